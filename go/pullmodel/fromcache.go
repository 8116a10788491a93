package pullmodel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/extract"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/transfer"
)

// copyChunk bounds each copy_file_range round, so a cancelled pull stops
// within one chunk of a large shard.
const copyChunk = 64 << 20

// errBlobGone is a cached blob that vanished (a prune, a cache remove)
// between the look and the copy: the file is fetched instead.
var errBlobGone = errors.New("the cached blob vanished")

// copyBlob makes rel (inside root) hold the cache's blob at src, of size
// bytes. It is written as rel.incomplete, fsynced (a local directory is
// durable when the pull returns) and renamed over rel, so nobody ever sees
// part of it and whatever was there, a stale or half-written file
// included, is replaced whole. A reflink costs neither time nor space where
// the file system has it; elsewhere the kernel copies (copy_file_range).
// The caller holds the lease of rel. mode is requested at creation (the
// umask applies, as for unpacked files); exact sets it as it is, as a
// download does.
func copyBlob(ctx context.Context, root *os.Root, rel, src string, size int64, mode os.FileMode, exact bool) error {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return errBlobGone
	} else if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil {
		return err
	} else if size >= 0 && fi.Size() != size {
		return errBlobGone // cut short since it was trusted: fetch it
	}
	if d := path.Dir(rel); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	tmp := transfer.IncompletePath(rel)
	// An interrupted download's partial data and resume record: the copy
	// supersedes both. Removed, not truncated: the name may be a hard link
	// to a file that is not ours to change.
	_ = root.Remove(tmp + ".json")
	_ = root.Remove(tmp)
	out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			_ = root.Remove(tmp)
		}
	}()
	if reflink(out, in) != nil {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			// CopyN hands *os.File.ReadFrom a LimitedReader of a file,
			// which it copies in the kernel.
			n, err := io.CopyN(out, in, copyChunk)
			if errors.Is(err, io.EOF) || (err == nil && n < copyChunk) {
				break
			}
			if err != nil {
				return err
			}
		}
	}
	if exact {
		if err := out.Chmod(mode); err != nil {
			return err
		}
	}
	fi, err := out.Stat()
	if err != nil {
		return err
	}
	if size >= 0 && fi.Size() != size {
		return fmt.Errorf("copied %d bytes of %s, want %d", fi.Size(), src, size)
	}
	if err := out.Sync(); err != nil {
		return err
	}
	ok = true
	if err := out.Close(); err != nil {
		_ = root.Remove(tmp)
		return err
	}
	if err := root.Rename(tmp, rel); err != nil {
		_ = root.Remove(tmp)
		return err
	}
	return nil
}

// fromCache places in the local directory every selected file that the
// cache holds and trusts (blobOK: the rule snapshots are served by), by
// reflink or copy, so that a model pulled once per machine is not
// downloaded again, online or offline. What it does not hold is left for
// ensure to fetch, as before. Files already in place are left alone.
func (p *puller) fromCache(ctx context.Context, l *localDir, root *os.Root, files []model.File) error {
	for _, f := range files {
		var err error
		switch {
		case f.Archive == "":
			err = p.fileFromCache(ctx, l, root, f)
		case l.layerDone(ctx, f.Digest):
		default:
			err = p.layerFromCache(ctx, l, root, f)
		}
		if errors.Is(err, errBlobGone) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return oci.AsError(ctx.Err())
			}
			var coded *oci.Error
			if errors.As(err, &coded) {
				return err
			}
			return wrap(oci.CodeIO, fmt.Errorf("copying %s from the cache into %s: %w", f.Path, l.dir, err))
		}
	}
	return nil
}

func (p *puller) fileFromCache(ctx context.Context, l *localDir, root *os.Root, f model.File) error {
	if l.fresh(ctx, f.Path, f.Digest) {
		return nil
	}
	if ok, err := p.blobOK(ctx, f.Digest, f.Size); err != nil || !ok {
		return err
	}
	return p.withLease(ctx, l.lock("file+"+f.Path), func() error {
		// A file someone placed (or the last pull left unrecorded) is
		// kept when it is right: one read instead of a write.
		if ok, err := l.presentFile(ctx, f.Path, f.Digest, f.Digest); err != nil || ok {
			return err
		}
		if err := copyBlob(ctx, root, f.Path, p.cache.BlobPath(f.Digest), f.Size, 0o644, true); err != nil {
			return err
		}
		return l.note(f.Path, localFile{Digest: f.Digest, Layer: f.Digest})
	})
}

// layerFromCache places archive layer f (the entries it keeps) from the
// tree the cache unpacked it to; failing that, it copies the archive blob
// where the local unpack reads it, unless f is kept for some entries only:
// that one is fetched into the cache (fillLocalDir).
func (p *puller) layerFromCache(ctx context.Context, l *localDir, root *os.Root, f model.File) error {
	tree, err := p.keptEntries(f)
	if err != nil {
		return err
	}
	if ok, err := p.treeComplete(ctx, f.Digest); err != nil {
		return err
	} else if !ok {
		tree = nil
		if f.Entries != nil {
			return nil
		}
		if ok, err := p.blobOK(ctx, f.Digest, f.Size); err != nil || !ok {
			return err
		}
	}
	return p.withLease(ctx, l.lock("layer+"+f.Digest), func() error {
		if l.layerDone(ctx, f.Digest) {
			return nil
		}
		if tree == nil {
			blob := localBlob(l, f.Digest)
			if ok, _ := cache.FileMatches(ctx, blob, f.Digest); ok {
				return nil
			}
			meta, err := os.OpenRoot(l.meta)
			if err != nil {
				return err
			}
			defer meta.Close()
			return copyBlob(ctx, meta, path.Join("blobs", path.Base(blob)), p.cache.BlobPath(f.Digest), f.Size, 0o644, true)
		}
		for _, te := range tree {
			dst := te.Path // keptEntries joined it
			if strings.SplitN(dst, "/", 2)[0] == localMeta {
				return wrap(oci.CodeInvalidModel, fmt.Errorf("layer %s has an entry %q inside %s, which oci-client keeps for itself", f.Digest, dst, localMeta))
			}
			var err error
			switch te.Type {
			case string(extract.Dir):
				err = root.MkdirAll(dst, 0o755)
			case string(extract.Symlink):
				err = placeSymlink(root, dst, te.Target)
			default:
				if l.fresh(ctx, dst, te.Digest) {
					continue
				}
				mode := os.FileMode(te.Mode) & os.ModePerm
				if mode == 0 {
					mode = 0o644
				}
				err = copyBlob(ctx, root, dst, p.cache.BlobPath(te.Digest), te.Size, mode, false)
				if err == nil {
					err = l.note(dst, localFile{Digest: te.Digest, Layer: f.Digest})
				}
			}
			if err != nil {
				return err
			}
		}
		if f.Entries != nil {
			// Not done: other patterns may pick other entries.
			return nil
		}
		l.mu.Lock()
		l.rec.Layers = append(l.rec.Layers, f.Digest)
		l.mu.Unlock()
		os.Remove(localBlob(l, f.Digest))
		return nil
	})
}

// shareWithCache gives the cache blob d, just downloaded and verified into
// the local directory at pth, where a reflink makes that free: the next
// pull of the model, into the cache or another directory, then fetches
// nothing. Anything else (no reflink, another file system, the blob there
// already) leaves the cache as it was; the local pull does not depend on it.
func (p *puller) shareWithCache(pth, d string, size int64) {
	if p.cache.Has(d) {
		return
	}
	in, err := os.Open(pth)
	if err != nil {
		return
	}
	defer in.Close()
	out, err := p.cache.Staging(d)
	if err != nil {
		return
	}
	tmp := out.Name()
	fi, serr := in.Stat()
	ok := serr == nil && fi.Size() == size && reflink(out, in) == nil
	err = out.Close()
	if err == nil && ok {
		err = p.cache.Adopt(tmp, d)
	}
	os.Remove(tmp) // left where it was unless adopted
	if err == nil && ok {
		p.hashed(d)
	}
}

// offlineMissing names the files (wants[i] is files[i]) that are neither
// in the local directory nor in the cache.
func (p *puller) offlineMissing(ctx context.Context, wants []want, files []model.File) []string {
	var out []string
	for i, w := range wants {
		if ok, err := w.present(ctx); err == nil && ok {
			continue
		}
		f := files[i]
		ok, err := p.blobOK(ctx, f.Digest, f.Size)
		if err == nil && !ok && f.Archive != "" {
			ok, err = p.treeComplete(ctx, f.Digest)
		}
		if err != nil || !ok {
			out = append(out, f.Digest)
		}
	}
	return out
}
