package pullmodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/extract"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/transfer"
)

// A local directory gets real files, fsynced before the pull returns:
// outside the cache there is no record of what was verified during this
// boot. A file the cache holds is reflinked or copied from it (fromCache),
// never downloaded again; any other is verified while it downloads
// (resumable from its .incomplete file beside it), and given to the cache
// too where a reflink makes that free. <dir>/.oci-client/ holds what a repeat pull needs to
// skip files already there: record.json (path, digest, size, mtime of
// each file placed), leases, and archive layers on their way to being
// unpacked.
const localMeta = ".oci-client"

type localFile struct {
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size"`
	MTime  int64  `json:"mtime_ns"`
	Layer  string `json:"layer"`
}

type localRecord struct {
	Manifest string               `json:"manifest"`
	Layers   []string             `json:"layers"`
	Files    map[string]localFile `json:"files"`
}

type localDir struct {
	dir, meta string
	mu        sync.Mutex
	rec       *localRecord
	// verify (Options.Verify) re-hashes a file the record vouches for
	// before it counts as in place, once per pull: hashed holds those
	// that checked out, path -> digest.
	verify bool
	hashed map[string]string
}

// localBlob is where archive layer d waits to be unpacked.
func localBlob(l *localDir, d string) string {
	return filepath.Join(l.meta, "blobs", strings.Replace(d, ":", "-", 1))
}

func (l *localDir) recordPath() string { return filepath.Join(l.meta, "record.json") }

func (l *localDir) lock(key string) string {
	return filepath.Join(l.meta, "locks", strings.NewReplacer(":", "-", "/", "+").Replace(key)+".lock")
}

func (l *localDir) load() error {
	rec := &localRecord{Files: map[string]localFile{}}
	data, err := os.ReadFile(l.recordPath())
	if err == nil {
		_ = json.Unmarshal(data, rec) // damaged: files are re-checked
		if rec.Files == nil {
			rec.Files = map[string]localFile{}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	l.rec = rec
	return nil
}

// fresh says whether pth is the file the record says was placed there
// with digest d, unchanged since (same size and modification time); with
// verify, also that it still hashes to d.
func (l *localDir) fresh(ctx context.Context, pth, d string) bool {
	l.mu.Lock()
	f, ok := l.rec.Files[pth]
	done := l.hashed[pth] == d
	l.mu.Unlock()
	if !ok || f.Digest != d {
		return false
	}
	full := filepath.Join(l.dir, filepath.FromSlash(pth))
	fi, err := os.Lstat(full)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size || fi.ModTime().UnixNano() != f.MTime {
		return false
	}
	if !l.verify || done {
		return true
	}
	if ok, err := cache.FileMatches(ctx, full, d); err != nil || !ok {
		return false // replaced whole, from the cache or the registry
	}
	l.mu.Lock()
	l.hashed[pth] = d
	l.mu.Unlock()
	return true
}

func (l *localDir) note(pth string, f localFile) error {
	fi, err := os.Lstat(filepath.Join(l.dir, filepath.FromSlash(pth)))
	if err != nil {
		return err
	}
	f.Size, f.MTime = fi.Size(), fi.ModTime().UnixNano()
	l.mu.Lock()
	l.rec.Files[pth] = f
	l.mu.Unlock()
	return nil
}

func (p *puller) intoLocalDir(ctx context.Context, res *resolved, files []model.File) (string, []string, error) {
	l, err := p.fillLocalDir(ctx, files)
	if err != nil {
		return "", nil, err
	}
	names, err := p.selected(res, files)
	if err != nil {
		return "", nil, err
	}
	err = p.withLease(ctx, l.lock("record"), func() error { return l.save(res.digest, files) })
	return l.dir, names, err
}

// fillLocalDir places the files in the local directory. An archive kept
// for its entries goes through the cache, whose tree of it says what a
// repeat pull, or an offline one, still has to place.
func (p *puller) fillLocalDir(ctx context.Context, files []model.File) (*localDir, error) {
	dir, err := filepath.Abs(p.o.LocalDir)
	if err != nil {
		return nil, wrap(oci.CodeInvalidArgument, err)
	}
	l := &localDir{dir: dir, meta: filepath.Join(dir, localMeta), verify: p.o.Verify, hashed: map[string]string{}}
	for _, d := range []string{"locks", "blobs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(l.meta, d), 0o755); err != nil {
			return nil, wrap(oci.CodeIO, fmt.Errorf("creating the local directory %s: %w", dir, err))
		}
	}
	for _, f := range files {
		if top := strings.SplitN(joinClean(f.ExtractTo, f.Path), "/", 2)[0]; top == localMeta || f.ExtractTo == localMeta {
			return nil, wrap(oci.CodeInvalidModel, fmt.Errorf("the model has a file %q inside %s, which oci-client keeps for itself", f.Path, localMeta))
		}
	}
	if err := l.load(); err != nil {
		return nil, wrap(oci.CodeIO, err)
	}
	// Local files are durable when the pull returns; the local
	// directory's leases keep other writers away.
	policy := transfer.Policy{Leased: true, Buffered: !p.o.DirectIO}

	var wants []want
	for _, f := range files {
		f := f
		if f.Archive == "" {
			wants = append(wants, want{
				digest: f.Digest, size: f.Size, label: f.Path,
				path: filepath.Join(dir, filepath.FromSlash(f.Path)),
				lock: l.lock("file+" + f.Path),
				present: func(ctx context.Context) (bool, error) {
					return l.presentFile(ctx, f.Path, f.Digest, f.Digest)
				},
				done: func(pth string) error {
					p.shareWithCache(pth, f.Digest, f.Size)
					return l.note(f.Path, localFile{Digest: f.Digest, Layer: f.Digest})
				},
				policy: policy,
			})
			continue
		}
		if f.Entries != nil {
			wants = append(wants, p.archiveWant(f))
			continue
		}
		blob := localBlob(l, f.Digest)
		wants = append(wants, want{
			digest: f.Digest, size: f.Size, label: f.Path, path: blob, lock: l.lock("layer+" + f.Digest),
			present: func(ctx context.Context) (bool, error) {
				if l.layerDone(ctx, f.Digest) {
					return true, nil
				}
				ok, err := cache.FileMatches(ctx, blob, f.Digest)
				if errors.Is(err, fs.ErrNotExist) {
					return false, nil
				}
				return ok, wrap(oci.CodeIO, err)
			},
			done:   func(string) error { return nil },
			policy: policy,
		})
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, wrap(oci.CodeIO, err)
	}
	defer root.Close()
	if p.o.Offline {
		// Checked before anything is copied: a pull that cannot finish
		// does not spend minutes copying first.
		if missing := p.offlineMissing(ctx, wants, files); len(missing) > 0 {
			return nil, notCached(p.ref.Name(), "", "%s: %d of the selected files are neither in %s nor in the cache at %s: %s", p.ref.Name(), len(missing), dir, p.cache.Root, strings.Join(missing, ", "))
		}
	}
	if err := p.fromCache(ctx, l, root, files); err != nil {
		return nil, err
	}
	if err := p.ensure(ctx, wants); err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.Archive == "" || l.layerDone(ctx, f.Digest) {
			continue
		}
		if f.Entries != nil {
			err = p.unpack(ctx, f)
			if err == nil {
				err = p.fromCache(ctx, l, root, []model.File{f})
			}
		} else {
			err = p.withLease(ctx, l.lock("layer+"+f.Digest), func() error { return l.unpack(ctx, f, p.o.Limits) })
		}
		if err != nil {
			return nil, err
		}
	}
	return l, nil
}

// presentFile says whether pth already holds blob d: per the record, or
// by re-hashing a file the record does not vouch for.
func (l *localDir) presentFile(ctx context.Context, pth, d, layer string) (bool, error) {
	if l.fresh(ctx, pth, d) {
		return true, nil
	}
	full := filepath.Join(l.dir, filepath.FromSlash(pth))
	fi, err := os.Lstat(full)
	if err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	ok, err := cache.FileMatches(ctx, full, d)
	if err != nil || !ok {
		return false, nil
	}
	l.mu.Lock()
	l.hashed[pth] = d
	l.mu.Unlock()
	return true, wrap(oci.CodeIO, l.note(pth, localFile{Digest: d, Layer: layer}))
}

func (l *localDir) layerDone(ctx context.Context, d string) bool {
	l.mu.Lock()
	done := false
	for _, x := range l.rec.Layers {
		done = done || x == d
	}
	type placed struct{ path, digest string }
	var check []placed
	for pth, f := range l.rec.Files {
		if f.Layer == d && f.Digest != "" {
			check = append(check, placed{pth, f.Digest})
		}
	}
	l.mu.Unlock()
	if !done {
		return false
	}
	for _, c := range check {
		if !l.fresh(ctx, c.path, c.digest) {
			return false
		}
	}
	return true
}

// unpack extracts archive layer f into a staging directory, fsyncs what
// it wrote, and moves each entry into place.
func (l *localDir) unpack(ctx context.Context, f model.File, lim extract.Limits) error {
	if l.layerDone(ctx, f.Digest) {
		return nil
	}
	blob := localBlob(l, f.Digest)
	staging, err := os.MkdirTemp(filepath.Join(l.meta, "tmp"), "unpack-")
	if err != nil {
		return wrap(oci.CodeIO, err)
	}
	defer os.RemoveAll(staging)
	entries, err := unpackFile(ctx, blob, f, staging, lim)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return wrap(oci.CodeIO, err)
	}
	defer root.Close()
	for _, e := range entries {
		dst := joinClean(f.ExtractTo, e.Path)
		if err := placeLocal(root, staging, dst, e); err != nil {
			return wrap(oci.CodeIO, fmt.Errorf("placing %s in %s: %w", dst, l.dir, err))
		}
		if e.Type == extract.File {
			if err := l.note(dst, localFile{Digest: e.Digest, Layer: f.Digest}); err != nil {
				return wrap(oci.CodeIO, err)
			}
		}
	}
	l.mu.Lock()
	l.rec.Layers = append(l.rec.Layers, f.Digest)
	l.mu.Unlock()
	os.Remove(blob)
	return nil
}

func placeLocal(root *os.Root, staging, dst string, e extract.Entry) error {
	switch e.Type {
	case extract.Dir:
		return root.MkdirAll(dst, 0o755)
	case extract.Symlink:
		return placeSymlink(root, dst, e.Target)
	}
	src := filepath.Join(staging, filepath.FromSlash(e.Path))
	if fh, err := os.Open(src); err == nil {
		err = fh.Sync()
		fh.Close()
		if err != nil {
			return err
		}
	}
	if d := filepath.Dir(filepath.FromSlash(dst)); d != "." {
		if err := root.MkdirAll(filepath.ToSlash(d), 0o755); err != nil {
			return err
		}
	}
	// os.Root cannot rename from outside itself; staging is inside the
	// directory, so a rename relative to it stays on one file system.
	rel, err := filepath.Rel(root.Name(), src)
	if err != nil {
		return err
	}
	return root.Rename(filepath.ToSlash(rel), dst)
}

// save merges this pull's files into the record, under its lease.
func (l *localDir) save(manifest string, files []model.File) error {
	mine := l.rec
	if err := l.load(); err != nil {
		return wrap(oci.CodeIO, err)
	}
	if l.rec.Manifest != manifest {
		l.rec = &localRecord{Files: map[string]localFile{}}
	}
	l.rec.Manifest = manifest
	for pth, f := range mine.Files {
		l.rec.Files[pth] = f
	}
	have := map[string]bool{}
	for _, d := range l.rec.Layers {
		have[d] = true
	}
	for _, d := range mine.Layers {
		if !have[d] {
			l.rec.Layers, have[d] = append(l.rec.Layers, d), true
		}
	}
	for _, f := range files {
		if f.Archive == "" && !have[f.Digest] {
			l.rec.Layers, have[f.Digest] = append(l.rec.Layers, f.Digest), true
		}
	}
	data, err := json.Marshal(l.rec)
	if err != nil {
		return err
	}
	tmp := l.recordPath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return wrap(oci.CodeIO, err)
	}
	return wrap(oci.CodeIO, os.Rename(tmp, l.recordPath()))
}
