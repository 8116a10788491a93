package model

import (
	"fmt"
	"math"
	"path"
	"strings"

	"github.com/oci-client/liboci/internal/safepath"
)

// pending is a layer on its way to becoming a File; Path is empty until it
// has a name.
type pending struct {
	t    layerType
	file File
}

// addFiles turns layers into Files: names from annotations (or the
// Kitfile) first, then generated names for the rest, which must not take a
// name a layer was given.
func (m *Model) addFiles(layers []Descriptor, kit *kitfile) error {
	var todo []*pending
	for i, l := range layers {
		p, err := m.nameLayer(l, kit)
		if err != nil {
			return fmt.Errorf("%w: layer %d (%s): %w", ErrBadManifest, i, l.Digest, err)
		}
		if p != nil {
			todo = append(todo, p)
		}
	}
	m.generateNames(todo)
	for _, p := range todo {
		if p.file.Path != "" {
			m.Files = append(m.Files, p.file)
		}
	}
	if err := m.checkPaths(); err != nil {
		return err
	}
	for _, f := range m.Files {
		if f.Size > math.MaxInt64-m.TotalSize {
			return fmt.Errorf("%w: the layer sizes add up to more than 2^63 bytes", ErrBadManifest)
		}
		m.TotalSize += f.Size
	}
	return nil
}

// nameLayer classifies one layer and names it if its annotations (or the
// Kitfile) do. It returns nil for a layer it skipped.
func (m *Model) nameLayer(l Descriptor, kit *kitfile) (*pending, error) {
	t, known := classify(l.MediaType)
	p := &pending{t: t, file: File{
		Digest: l.Digest, Size: l.Size, MediaType: l.MediaType, Kind: t.kind, Archive: t.archive,
	}}
	if t.family == FormatModelPack && t.ext == "bin" && m.weightExt != "" {
		p.t.ext = m.weightExt
	}
	name := layerName(l)
	if known && t.kitBase != "" && kit != nil {
		kitPath, extractTo, err := kit.place(t.kitBase, l.Digest)
		if err != nil {
			return nil, err
		}
		if kitPath != "" {
			name = kitPath
		}
		p.file.ExtractTo = extractTo
	}
	if !known {
		if name == "" {
			reason := fmt.Sprintf("unknown media type %q and no file name annotation", l.MediaType)
			if isImageLayer(l.MediaType) {
				reason = "a container image layer without a file name annotation"
			}
			m.skip(l, reason)
			return nil, nil
		}
		p.file.Kind = KindOther
		// oras pushes a directory as a gzipped tar whose entries begin with
		// the directory's name (content/file: tarDirectory), and unpacks
		// it where a file of that name would go: the entries are relative
		// to the root.
		if l.Annotations[annotationORASUnpack] == "true" {
			p.file.Archive = ArchiveTarGzip
		}
	}
	if name == "" {
		p.file.Unnamed = p.file.Archive != ""
		return p, nil
	}
	clean, err := safepath.Clean(name)
	if err != nil {
		return nil, err
	}
	if clean == "" {
		if p.file.Archive == "" {
			return nil, fmt.Errorf("file name %q names the model root", name)
		}
		// An archive of the whole model (modctl packs directories too):
		// it needs a name of its own, and unpacks into the root anyway.
		p.file.Unnamed = true
		return p, nil
	}
	p.file.Path = clean
	if t.family == FormatModelPack && t.kind == KindWeight && p.file.Archive == "" &&
		strings.Contains(strings.ToLower(path.Base(clean)), "mmproj") {
		// ModelPack has no projector type; Docker Model Runner tells one by
		// its name (internal/bundle: isMMProjFilePath), and so do we.
		p.file.Kind = KindMMProj
	}
	return p, nil
}

// generateNames names the layers no annotation named: weights like
// huggingface shards, numbered among the unnamed weights of their extension
// in manifest order; other known layers by kind, numbered when repeated.
// Layers neither covers are skipped.
func (m *Model) generateNames(todo []*pending) {
	taken := map[string]bool{}
	shards := map[string]int{}
	for _, p := range todo {
		if p.file.Path != "" {
			taken[p.file.Path] = true
		} else if isShard(p) {
			shards[p.t.ext]++
		}
	}
	shard := map[string]int{}
	for _, p := range todo {
		switch {
		case p.file.Path != "":
		case isShard(p):
			ext := p.t.ext
			shard[ext]++
			if shards[ext] == 1 {
				p.file.Path = "model." + ext
			} else {
				p.file.Path = fmt.Sprintf("model-%05d-of-%05d.%s", shard[ext], shards[ext], ext)
			}
			taken[p.file.Path] = true
		case p.t.stem != "":
			p.file.Path = freeName(p.t.stem+archiveExt[p.file.Archive], taken)
			taken[p.file.Path] = true
		default:
			m.skip(Descriptor{Digest: p.file.Digest, MediaType: p.file.MediaType},
				fmt.Sprintf("a %s layer without a file name annotation", p.file.Kind))
		}
	}
}

func isShard(p *pending) bool {
	return p.file.Kind == KindWeight && p.file.Archive == "" && p.t.ext != ""
}

// freeName is name, else name with -2, -3, ... before its extension.
func freeName(name string, taken map[string]bool) string {
	if !taken[name] {
		return name
	}
	stem, ext := name, ""
	if i := strings.IndexByte(name[1:], '.'); i >= 0 {
		stem, ext = name[:i+1], name[i+1:]
	}
	for n := 2; ; n++ {
		if c := fmt.Sprintf("%s-%d%s", stem, n, ext); !taken[c] {
			return c
		}
	}
}

// checkPaths refuses two files at one path, and a file where another needs
// a directory. The same blob listed twice at one path is harmless and only
// fetched once.
func (m *Model) checkPaths() error {
	at := map[string]int{}
	kept := m.Files[:0]
	for _, f := range m.Files {
		if j, ok := at[f.Path]; ok {
			g := kept[j]
			if g.Digest == f.Digest && g.Archive == f.Archive && g.ExtractTo == f.ExtractTo {
				m.skip(Descriptor{Digest: f.Digest, MediaType: f.MediaType}, fmt.Sprintf("the same blob is listed again as %s", f.Path))
				continue
			}
			return fmt.Errorf("%w: two layers (%s and %s) are both %q", ErrBadManifest, g.Digest, f.Digest, f.Path)
		}
		at[f.Path] = len(kept)
		kept = append(kept, f)
	}
	m.Files = kept
	dirs := map[string]bool{}
	for _, f := range m.Files {
		p := f.Path
		if f.Archive != "" {
			p = path.Join(f.ExtractTo, "x")
		}
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, f := range m.Files {
		if f.Archive == "" && dirs[f.Path] {
			return fmt.Errorf("%w: %q is a file, and other files need it to be a directory", ErrBadManifest, f.Path)
		}
	}
	return nil
}

func (m *Model) skip(l Descriptor, reason string) {
	m.Skipped = append(m.Skipped, Skipped{Digest: l.Digest, MediaType: l.MediaType, Reason: reason})
}
