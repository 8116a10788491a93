package pullmodel

import (
	"fmt"
	"strings"

	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/extract"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
)

// An archive kept for its entries (model.File.Entries) is fetched and
// unpacked into the cache whole, as any archive: the cache's tree of it is
// then complete, so a later pull with other patterns, or none, or offline,
// finds every entry there. Only the entries the patterns select are placed.

// keptEntries is what of archive f's cached tree the pull places, each
// with its path in the model directory; nil when the tree is unknown.
func (p *puller) keptEntries(f model.File) ([]cache.TreeEntry, error) {
	tree, err := p.cache.ReadTree(f.Digest)
	if err != nil || tree == nil {
		return nil, wrap(oci.CodeIO, err)
	}
	kept := make([]cache.TreeEntry, 0, len(tree))
	for _, te := range tree {
		te.Path = joinClean(f.ExtractTo, te.Path)
		if f.Entries.Keep(te.Path) {
			kept = append(kept, te)
		}
	}
	return kept, nil
}

// selectedNames lists what the pull gives, in manifest order: each file
// and whole archive by its path, and the files picked out of an archive
// (whose tree must be in the cache by now).
func (p *puller) selectedNames(files []model.File) ([]string, error) {
	var out []string
	for _, f := range files {
		if f.Entries == nil {
			out = append(out, f.Path)
			continue
		}
		kept, err := p.keptEntries(f)
		if err != nil {
			return nil, err
		}
		if kept == nil {
			return nil, wrap(oci.CodeIO, fmt.Errorf("the unpacked tree of layer %s (%s) is missing", f.Digest, f.Path))
		}
		for _, te := range kept {
			if te.Type == string(extract.File) {
				out = append(out, te.Path)
			}
		}
	}
	return out, nil
}

// selected is selectedNames, failed by checkSelected when it is empty.
func (p *puller) selected(res *resolved, files []model.File) ([]string, error) {
	names, err := p.selectedNames(files)
	if err != nil {
		return nil, err
	}
	return names, p.checkSelected(res, names)
}

// maxListed bounds the files a no-match message names.
const maxListed = 20

// checkSelected fails a pull whose patterns select no file: an empty
// directory and success would hide a typo, or a model laid out otherwise
// than the caller thought. The error lists the model's files, with the
// entries of the archives whose trees the cache knows.
func (p *puller) checkSelected(res *resolved, names []string) error {
	if len(names) > 0 || (len(p.o.Allow) == 0 && len(p.o.Ignore) == 0) || p.o.AllowNoMatch {
		return nil
	}
	var all []string
	for _, f := range res.model.Files {
		tree, _ := p.cache.ReadTree(f.Digest)
		if f.Archive == "" || tree == nil {
			all = append(all, f.Path)
			continue
		}
		for _, te := range tree {
			if te.Type == string(extract.File) {
				all = append(all, joinClean(f.ExtractTo, te.Path))
			}
		}
	}
	shown := strings.Join(all[:min(len(all), maxListed)], ", ")
	if len(all) > maxListed {
		shown += fmt.Sprintf(", … and %d more", len(all)-maxListed)
	}
	var said []string
	if len(p.o.Allow) > 0 {
		said = append(said, fmt.Sprintf("allow_patterns %q", p.o.Allow))
	}
	if len(p.o.Ignore) > 0 {
		said = append(said, fmt.Sprintf("ignore_patterns %q", p.o.Ignore))
	}
	what := strings.Join(said, " with ")
	return &oci.Error{
		Code: oci.CodeNoMatch,
		Details: map[string]any{
			"allow_patterns": nonNil(p.o.Allow), "ignore_patterns": nonNil(p.o.Ignore), "files": nonNil(all),
		},
		Err: fmt.Errorf("%s: %s select no file; it has %d: %s", p.ref.Name(), what, len(all), shown),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
