package pullmodel

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/internal/events"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/transfer"
)

// intoSnapshot makes the cache's snapshot of the model hold files, and
// says which (selectedNames).
func (p *puller) intoSnapshot(ctx context.Context, res *resolved, files []model.File) (string, []string, error) {
	reg, repo := p.repo.RegistryStr(), p.repo.RepositoryStr()
	dir := p.cache.SnapshotDir(reg, repo, res.digest)
	rec, err := p.cache.ReadSnapshot(reg, repo, res.digest)
	if err != nil {
		return "", nil, wrap(oci.CodeIO, err)
	}
	if rec != nil {
		ok, err := p.servable(ctx, rec, dir, files)
		if err != nil {
			return "", nil, err
		}
		if ok {
			names, err := p.selected(res, files)
			if err != nil {
				return "", nil, err
			}
			p.cache.Touch(reg, repo, res.digest)
			return dir, names, nil
		}
	}
	// resolve has fetched the config already (readConfig).
	wants := make([]want, 0, len(files))
	for _, f := range files {
		if f.Archive == "" {
			wants = append(wants, p.blobWant(f.Digest, f.Size, f.Path))
		} else {
			wants = append(wants, p.archiveWant(f))
		}
	}
	if p.o.Offline {
		if missing := p.missing(ctx, wants); len(missing) > 0 {
			return "", nil, notCached(p.ref.Name(), "", "%s: %d of the selected files are not in the cache at %s: %s", p.ref.Name(), len(missing), p.cache.Root, strings.Join(missing, ", "))
		}
	}
	if err := p.ensure(ctx, wants); err != nil {
		return "", nil, err
	}
	for _, f := range files {
		if f.Archive != "" {
			if err := p.unpack(ctx, f); err != nil {
				return "", nil, err
			}
		}
	}
	names, err := p.selected(res, files)
	if err != nil {
		return "", nil, err
	}
	lock := p.cache.LockPath("snapshot+" + reg + "+" + repo + "+" + res.digest)
	err = p.withLease(ctx, lock, func() error { return p.link(res, files, dir) })
	if err != nil {
		return "", nil, err
	}
	p.cache.Touch(reg, repo, res.digest)
	return dir, names, nil
}

// missing names the wants that are not present, for an offline pull.
func (p *puller) missing(ctx context.Context, wants []want) []string {
	var out []string
	for _, w := range wants {
		if ok, err := w.present(ctx); err != nil || !ok {
			out = append(out, w.digest)
		}
	}
	return out
}

// servable says whether the snapshot already holds every selected file,
// each link in place and each blob one the cache may serve. Of an archive
// kept for its entries, those it picks must be recorded there (a layer
// linked whole has them all). Under Verify, where each blob is hashed
// first, each file is reported found as soon as its blob checks out, in
// manifest (shard) order: a loader reads shard 1 while shard 2 is hashed.
func (p *puller) servable(ctx context.Context, rec *cache.Snapshot, dir string, files []model.File) (bool, error) {
	type served struct {
		path  string
		entry cache.Entry
	}
	var check []served
	for _, f := range files {
		if !rec.HasLayer(f.Digest) {
			if f.Entries == nil {
				return false, nil
			}
			kept, err := p.keptEntries(f)
			if err != nil || kept == nil {
				return false, err
			}
			for _, te := range kept {
				if e, ok := rec.Files[te.Path]; !ok || e.Layer != f.Digest || e.Type != te.Type || e.Digest != te.Digest {
					return false, nil
				}
			}
		}
		var paths []string
		for pth, e := range rec.Files {
			if e.Layer == f.Digest && e.Type == "file" {
				paths = append(paths, pth)
			}
		}
		slices.Sort(paths)
		for _, pth := range paths {
			check = append(check, served{pth, rec.Files[pth]})
		}
	}
	for _, c := range check {
		if fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(c.path))); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			return false, nil
		}
	}
	prog := transfer.ProgressFrom(ctx)
	for _, c := range check {
		if ok, err := p.blobOK(ctx, c.entry.Digest, c.entry.Size); err != nil || !ok {
			return false, err
		}
		if p.o.Verify {
			prog.Found(c.path, p.cache.BlobPath(c.entry.Digest))
			events.Emit(ctx, foundInSnapshot(p, c.path, c.entry.Digest))
		}
	}
	if !p.o.Verify {
		// Told once the whole snapshot is known servable: else the pull
		// goes on to fetch, and would tell of some files twice.
		for _, c := range check {
			events.Emit(ctx, foundInSnapshot(p, c.path, c.entry.Digest))
		}
	}
	return true, nil
}

// foundInSnapshot is the file_found event of a file a snapshot serves.
func foundInSnapshot(p *puller, label, digest string) abi.FileFound {
	return abi.FileFound{Path: p.cache.BlobPath(digest), Label: label, Digest: digest, How: "cache"}
}

// link puts every selected file into the snapshot directory and records
// it; the caller holds the snapshot's lease.
func (p *puller) link(res *resolved, files []model.File, dir string) error {
	reg, repo := p.repo.RegistryStr(), p.repo.RepositoryStr()
	rec, err := p.cache.ReadSnapshot(reg, repo, res.digest)
	if err != nil {
		return wrap(oci.CodeIO, err)
	}
	if rec == nil {
		rec = &cache.Snapshot{Registry: reg, Repository: repo, Manifest: res.digest, Files: map[string]cache.Entry{}}
	}
	rec.Format = res.model.Format
	rec.Config = res.model.Config.Digest
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return wrap(oci.CodeIO, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return wrap(oci.CodeIO, err)
	}
	defer root.Close()
	put := func(pth string, e cache.Entry) error {
		var err error
		switch e.Type {
		case "dir":
			err = root.MkdirAll(pth, 0o755)
		case "symlink":
			err = placeSymlink(root, pth, e.Target)
		default:
			target, rerr := filepath.Rel(filepath.Dir(filepath.Join(dir, filepath.FromSlash(pth))), p.cache.BlobPath(e.Digest))
			if rerr != nil {
				return rerr
			}
			err = placeSymlink(root, pth, target)
		}
		if err != nil {
			return fmt.Errorf("placing %s in %s: %w", pth, dir, err)
		}
		rec.Files[pth] = e
		return nil
	}
	for _, f := range files {
		if f.Archive == "" {
			if err := put(f.Path, cache.Entry{Type: "file", Digest: f.Digest, Size: f.Size, Layer: f.Digest}); err != nil {
				return wrap(oci.CodeIO, err)
			}
		} else {
			kept, err := p.keptEntries(f)
			if err != nil || kept == nil {
				return wrap(oci.CodeIO, fmt.Errorf("the unpacked tree of layer %s is missing: %v", f.Digest, err))
			}
			for _, te := range kept {
				e := te.Entry
				e.Layer = f.Digest
				if err := put(te.Path, e); err != nil {
					return wrap(oci.CodeIO, err)
				}
			}
		}
		switch {
		case rec.HasLayer(f.Digest):
		case f.Entries == nil:
			rec.Layers = append(rec.Layers, f.Digest)
			rec.Partial = slices.DeleteFunc(rec.Partial, func(d string) bool { return d == f.Digest })
		case !slices.Contains(rec.Partial, f.Digest):
			rec.Partial = append(rec.Partial, f.Digest)
		}
	}
	return wrap(oci.CodeIO, p.cache.WriteSnapshot(rec))
}

func joinClean(base, rel string) string {
	if base == "" {
		return rel
	}
	return path.Join(base, rel)
}

// placeSymlink makes pth a symlink to target, atomically replacing what
// was there, and leaves a link that already points there alone.
func placeSymlink(root *os.Root, pth, target string) error {
	if cur, err := root.Readlink(pth); err == nil && cur == target {
		return nil
	}
	if d := path.Dir(pth); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	tmp := pth + ".tmp-link-" + fmt.Sprint(os.Getpid())
	_ = root.Remove(tmp)
	if err := root.Symlink(target, tmp); err != nil {
		return err
	}
	if err := root.Rename(tmp, pth); err != nil {
		_ = root.Remove(tmp)
		return err
	}
	return nil
}
