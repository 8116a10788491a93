package pullmodel

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/extract"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
)

// Archive layers are unpacked once per cache: each file inside becomes a
// blob of its own (so identical files share storage, and every file of a
// snapshot is checked the same way), the layer's tree records where they
// go, and the archive itself is then deleted.

// archiveWant is a want for archive layer f: done once its tree is known
// and every blob of it is in place, else its blob is fetched.
func (p *puller) archiveWant(f model.File) want {
	w := p.blobWant(f.Digest, f.Size, f.Path)
	w.present = func(ctx context.Context) (bool, error) {
		if ok, err := p.treeComplete(ctx, f.Digest); err != nil || ok {
			return ok, err
		}
		return p.blobOK(ctx, f.Digest, f.Size)
	}
	return w
}

func (p *puller) treeComplete(ctx context.Context, layer string) (bool, error) {
	tree, err := p.cache.ReadTree(layer)
	if err != nil || tree == nil {
		return false, wrap(oci.CodeIO, err)
	}
	for _, te := range tree {
		if te.Type != string(extract.File) {
			continue
		}
		if ok, err := p.blobOK(ctx, te.Digest, te.Size); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func compression(archive string) extract.Compression {
	switch archive {
	case "tar+gzip":
		return extract.Gzip
	case "tar+zstd":
		return extract.Zstd
	}
	return extract.None
}

// unpack turns the downloaded archive layer f into blobs and a tree.
func (p *puller) unpack(ctx context.Context, f model.File) error {
	return p.withLease(ctx, p.cache.LockPath("tree+"+f.Digest), func() error {
		if ok, err := p.treeComplete(ctx, f.Digest); err != nil || ok {
			return err
		}
		blob := p.cache.BlobPath(f.Digest)
		if ok, err := p.blobOK(ctx, f.Digest, f.Size); err != nil || !ok {
			return wrap(oci.CodeIO, fmt.Errorf("the archive layer %s (%s) vanished from the cache before it was unpacked: %v", f.Digest, f.Path, err))
		}
		staging, err := p.cache.TmpDir()
		if err != nil {
			return wrap(oci.CodeIO, err)
		}
		defer os.RemoveAll(staging)
		entries, err := unpackFile(ctx, blob, f, staging, p.o.Limits)
		if err != nil {
			return err
		}
		tree := make([]cache.TreeEntry, 0, len(entries))
		for _, e := range entries {
			if e.Type == extract.File {
				if err := p.adopt(ctx, filepath.Join(staging, filepath.FromSlash(e.Path)), e.Digest); err != nil {
					return wrap(oci.CodeIO, err)
				}
			}
			tree = append(tree, cache.TreeEntry{Path: e.Path, Entry: cache.Entry{
				Type: string(e.Type), Digest: e.Digest, Size: e.Size, Mode: e.Mode, Target: e.Target,
			}})
		}
		if err := p.cache.WriteTree(f.Digest, tree); err != nil {
			return wrap(oci.CodeIO, err)
		}
		// The tree is written first: at any moment the layer is either
		// unpacked or still downloadable from its blob.
		p.cache.RemoveDigest(f.Digest)
		return nil
	})
}

// unpackFile extracts the archive file at blob into staging.
func unpackFile(ctx context.Context, blob string, f model.File, staging string, lim extract.Limits) ([]extract.Entry, error) {
	src, err := os.Open(blob)
	if err != nil {
		return nil, wrap(oci.CodeIO, err)
	}
	defer src.Close()
	lim.CompressedSize = f.Size
	entries, err := extract.Extract(ctx, bufio.NewReaderSize(src, 1<<20), compression(f.Archive), staging, lim)
	if err != nil {
		if ctx.Err() != nil {
			return nil, oci.AsError(ctx.Err())
		}
		return nil, classify(fmt.Errorf("unpacking layer %s (%s): %w", f.Digest, f.Path, err))
	}
	return entries, nil
}

// adopt moves an unpacked file into the cache as blob d, unless the cache
// has a copy it trusts already (an untrusted one is replaced; under Verify,
// one that does not hash to d, after it is moved aside).
func (p *puller) adopt(ctx context.Context, src, d string) error {
	if p.o.Verify {
		if ok, err := p.blobOK(ctx, d, 0); err != nil || ok {
			return err
		}
	}
	if p.cache.Trusted(d) {
		return nil
	}
	if err := p.cache.Adopt(src, d); err != nil {
		return err
	}
	p.hashed(d)
	return nil
}
