package extract

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/oci-client/liboci/internal/safepath"
)

// entry creates one archive entry at name, its clean path.
func (x *extraction) entry(tr io.Reader, hdr *tar.Header, name string) error {
	switch hdr.Typeflag {
	// archive/tar reports the old TypeRegA, and PAX sparse files, as
	// TypeReg; it reads old GNU sparse files with their holes as zeros
	// and their full size in the header, so they are written out dense.
	case tar.TypeReg, tar.TypeGNUSparse:
		return x.file(tr, hdr, name)
	case tar.TypeDir:
		return x.dir(hdr, name)
	case tar.TypeSymlink:
		return x.symlink(hdr, name)
	case tar.TypeLink:
		return x.hardlink(hdr, name)
	}
	return unsafe(hdr.Name, "%s refused", typeName(hdr.Typeflag))
}

func typeName(flag byte) string {
	switch flag {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	}
	return fmt.Sprintf("entry type %q", flag)
}

func (x *extraction) file(tr io.Reader, hdr *tar.Header, name string) error {
	// Checked on the header, before a byte is written; the copy never
	// asks for more than the header's size.
	switch size := hdr.Size; {
	case size < 0:
		return fmt.Errorf("extracting %q: %w: negative size", hdr.Name, ErrCorrupt)
	case size > x.lim.MaxEntrySize:
		return unsafe(hdr.Name, "file of %d bytes, more than the %d allowed", size, x.lim.MaxEntrySize)
	case size > x.lim.MaxTotalSize-x.written:
		return unsafe(hdr.Name, "files total more than the %d bytes allowed", x.lim.MaxTotalSize)
	case size > x.guard.budget-x.written:
		return ratioError(hdr.Name, x.guard.budget, x.lim)
	}
	if err := x.claim(hdr.Name, name); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	// O_EXCL: whatever claim saw, never write through something that is
	// already there.
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("extracting %q: %w", hdr.Name, err)
	}
	i := x.add(Entry{Path: name, Type: File, Size: hdr.Size, Mode: uint32(mode)})
	digest, err := x.copy(f, tr, hdr.Size, hdr.Name)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("extracting %q: %w", hdr.Name, cerr)
	}
	if err != nil {
		return err
	}
	x.entries[i].Digest = digest
	return nil
}

// copy writes size bytes from r to w and returns their digest.
func (x *extraction) copy(w io.Writer, r io.Reader, size int64, entry string) (string, error) {
	h := sha256.New()
	for left := size; left > 0; {
		if err := x.ctx.Err(); err != nil {
			return "", fmt.Errorf("extracting %q: %w", entry, err)
		}
		n, err := io.ReadFull(r, x.buf[:min(left, int64(len(x.buf)))])
		if n > 0 {
			h.Write(x.buf[:n])
			if _, werr := w.Write(x.buf[:n]); werr != nil {
				return "", fmt.Errorf("extracting %q: %w", entry, werr)
			}
			left -= int64(n)
			x.written += int64(n)
		}
		if err != nil {
			return "", x.failed(fmt.Sprintf("extracting %q", entry), err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func (x *extraction) dir(hdr *tar.Header, name string) error {
	if i, ok := x.seen[name]; ok {
		if x.entries[i].Type == Dir {
			return nil // directories may repeat
		}
		return unsafe(hdr.Name, "appears twice")
	}
	if err := x.parents(hdr.Name, name); err != nil {
		return err
	}
	return x.mkdir(hdr.Name, name)
}

func (x *extraction) symlink(hdr *tar.Header, name string) error {
	if reason := targetProblem(name, hdr.Linkname); reason != "" {
		return unsafe(hdr.Name, "%s", reason)
	}
	if err := x.claim(hdr.Name, name); err != nil {
		return err
	}
	if err := x.root.Symlink(hdr.Linkname, name); err != nil {
		return fmt.Errorf("extracting %q: %w", hdr.Name, err)
	}
	x.add(Entry{Path: name, Type: Symlink, Target: hdr.Linkname})
	return nil
}

// hardlink links name to a file extracted earlier, which is known to be a
// regular file inside the root: a link cannot be checked once it exists.
func (x *extraction) hardlink(hdr *tar.Header, name string) error {
	target, err := safepath.Clean(hdr.Linkname)
	if err != nil {
		return unsafe(hdr.Name, "hard link target: %v", err)
	}
	i, ok := x.seen[target]
	if !ok || x.entries[i].Type != File {
		return unsafe(hdr.Name, "hard link to %q, which is not a file extracted earlier", hdr.Linkname)
	}
	if err := x.claim(hdr.Name, name); err != nil {
		return err
	}
	if err := x.root.Link(target, name); err != nil {
		return fmt.Errorf("extracting %q: %w", hdr.Name, err)
	}
	orig := x.entries[i]
	x.add(Entry{Path: name, Type: File, Size: orig.Size, Digest: orig.Digest, Mode: orig.Mode})
	return nil
}

func (x *extraction) mkdir(entry, p string) error {
	if err := x.root.Mkdir(p, 0o755); err != nil {
		return fmt.Errorf("extracting %q: %w", entry, err)
	}
	x.add(Entry{Path: p, Type: Dir, Mode: 0o755})
	return nil
}

// add records something created, and returns its index in x.entries.
func (x *extraction) add(e Entry) int {
	x.seen[e.Path] = len(x.entries)
	x.entries = append(x.entries, e)
	return len(x.entries) - 1
}
