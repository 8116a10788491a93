// Package extract unpacks the tar layers of model artifacts (tar, tar+gzip,
// tar+zstd) into a staging directory. Layers come from untrusted
// registries: nothing may land outside the directory, whether by name, by
// symlink or by hard link, devices and other special files are refused, and
// limits bound what one archive may unpack. The blob's digest is verified
// before; this only unpacks.
package extract

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/oci-client/liboci/internal/safepath"
)

// EntryType says what an Entry is.
type EntryType string

// The entry types Extract creates. Hard links are reported as files.
const (
	File    EntryType = "file"
	Dir     EntryType = "dir"
	Symlink EntryType = "symlink"
)

// Entry is one thing Extract created.
type Entry struct {
	Path   string    `json:"path"` // clean relative slash path
	Type   EntryType `json:"type"`
	Size   int64     `json:"size"`             // files
	Digest string    `json:"digest,omitempty"` // files: "sha256:<hex>" of the content, computed while writing
	// Mode is requested at creation, so the process umask applies on disk:
	// 0644 or 0755 for files (0755 if the archive set any exec bit), 0755
	// for directories, 0 for symlinks.
	Mode   uint32 `json:"mode"`
	Target string `json:"target,omitempty"` // symlinks: the target as written in the archive
}

// copyBuffer is the size of the buffer file content is copied through.
const copyBuffer = 1 << 20

// Extract unpacks the tar archive read from r (decompressed as c) into dir,
// which must exist and be empty (a staging directory the caller later moves
// into place). It returns what it created, in archive order; directories
// the archive leaves out are created (and listed) before the first entry
// inside them. Repeated directories are listed once.
//
// Every name is cleaned by safepath and every file system operation goes
// through an os.Root on dir. Regular files, directories, symlinks whose
// target stays inside dir and hard links to files extracted earlier are
// created; any other type, an entry under a symlink, or a second entry at a
// path are refused. Files get mode 0644 or 0755, never an owner or times
// from the archive.
//
// On any error it removes everything it created under dir (dir itself
// stays) and returns the error: an *UnsafeError, an error wrapping
// ErrCorrupt, ctx's error, or a local I/O error.
//
// The archive must end with its end-of-archive marker (an empty stream is
// corrupt too): archive/tar alone would take a stream cut between two
// entries for a shorter archive. A cut after a file whose content ends in
// 512 zero bytes still passes; the digest verified before catches that.
func Extract(ctx context.Context, r io.Reader, c Compression, dir string, lim Limits) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("extracting into %q: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("extracting: %w", err)
	}
	defer root.Close()
	if err := mustBeEmpty(root); err != nil {
		return nil, fmt.Errorf("extracting into %q: %w", dir, err)
	}
	lim = lim.resolved()
	src := &source{r: r}
	stream, closeStream, err := decompressor(src, c)
	if err != nil {
		return nil, fmt.Errorf("extracting into %q: %w", dir, err)
	}
	defer closeStream()
	x := &extraction{
		ctx:   ctx,
		root:  root,
		lim:   lim,
		src:   src,
		guard: &guard{ctx: ctx, r: stream, budget: lim.unpackBudget(c), lim: lim},
		seen:  make(map[string]int),
		buf:   make([]byte, copyBuffer),
	}
	if err := x.run(c != None); err != nil {
		if rerr := x.removeAll(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up %q: %w", dir, rerr))
		}
		return nil, err
	}
	return x.entries, nil
}

// mustBeEmpty makes sure that removing what Extract created on failure
// leaves dir as the caller had it.
func mustBeEmpty(root *os.Root) error {
	f, err := root.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return errors.New("directory not empty")
	}
	if err != io.EOF {
		return err
	}
	return nil
}

// extraction is the state of one Extract call.
type extraction struct {
	ctx     context.Context
	root    *os.Root
	lim     Limits
	src     *source
	guard   *guard
	entries []Entry
	seen    map[string]int // path -> index in entries
	headers int            // read so far, for MaxEntries
	written int64          // file bytes
	buf     []byte
}

// trailing is how much of the decompressed stream is read after the
// end-of-archive marker, so that the gzip or zstd checksums at its end are
// checked; tar writers pad only to 10 KiB records.
const trailing = 1 << 20

func (x *extraction) run(compressed bool) error {
	tr := tar.NewReader(x.guard)
	for {
		if err := x.ctx.Err(); err != nil {
			return fmt.Errorf("extracting archive: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF && x.guard.ended() {
			break
		}
		if err != nil {
			return x.failed(x.after("reading tar header"), err)
		}
		if x.headers++; x.headers > x.lim.MaxEntries {
			return unsafe(hdr.Name, "more than %d entries", x.lim.MaxEntries)
		}
		x.guard.entry = hdr.Name
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // archive-wide metadata, nothing to create
		}
		name, err := safepath.Clean(hdr.Name)
		if pe, ok := errors.AsType[*safepath.Error](err); ok {
			return unsafe(pe.Path, "%s", pe.Reason) // pe.Path is shortened when too long
		} else if err != nil {
			return unsafe(hdr.Name, "%v", err)
		}
		if name == "" {
			continue // the root itself
		}
		if err := x.entry(tr, hdr, name); err != nil {
			return err
		}
	}
	if compressed {
		if _, err := io.CopyBuffer(io.Discard, io.LimitReader(x.guard, trailing), x.buf); err != nil {
			return x.failed(x.after("reading the end of the archive"), err)
		}
	}
	return nil
}

// failed reports an error from reading the stream: the caller's reader
// failing, or the guard stopping it, are what they are; anything else is
// damage to the tar, gzip or zstd data.
func (x *extraction) failed(what string, err error) error {
	switch stop := x.guard.stop; {
	case x.src.err != nil:
		return fmt.Errorf("%s: reading archive: %w", what, x.src.err)
	case stop != nil:
		if ue, ok := stop.(*UnsafeError); ok {
			return ue
		}
		return fmt.Errorf("%s: %w", what, stop)
	case err == io.EOF:
		err = io.ErrUnexpectedEOF // the stream ended early
	}
	return fmt.Errorf("%s: %w: %w", what, ErrCorrupt, err)
}

// after names the last entry read, for errors between entries.
func (x *extraction) after(what string) string {
	if x.guard.entry == "" {
		return what
	}
	return fmt.Sprintf("%s after %q", what, x.guard.entry)
}

// removeAll removes what this extraction created. Everything lies under the
// top-level names it created, and Root.RemoveAll does not follow symlinks.
func (x *extraction) removeAll() error {
	var errs []error
	for i := len(x.entries) - 1; i >= 0; i-- {
		if p := x.entries[i].Path; !strings.Contains(p, "/") {
			if err := x.root.RemoveAll(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
