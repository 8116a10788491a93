package extract_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/oci-client/liboci/extract"
)

// item is one entry of a test archive.
type item struct {
	hdr  tar.Header
	body string
}

func file(name, body string) item {
	return item{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body}
}

// exe is a setuid executable, which must come out as a plain 0755 file.
func exe(name, body string) item {
	it := file(name, body)
	it.hdr.Mode = 0o4755
	return it
}

func dir(name string) item {
	return item{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o700}}
}

func symlink(name, target string) item {
	return item{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) item {
	return item{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

func special(name string, flag byte) item {
	return item{hdr: tar.Header{Typeflag: flag, Name: name, Mode: 0o666, Devmajor: 1, Devminor: 3}}
}

func globalHeader() item {
	return item{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "made by a test"}}}
}

// tarOf returns an archive holding items.
func tarOf(tb testing.TB, items ...item) []byte {
	tb.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, it := range items {
		h := it.hdr
		if err := tw.WriteHeader(&h); err != nil {
			tb.Fatalf("writing header %q: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, it.body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// headerOnly returns an archive cut right after one file header that
// claims size bytes: nothing of the content follows.
func headerOnly(tb testing.TB, name string, size int64) []byte {
	tb.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size}); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func compress(tb testing.TB, c extract.Compression, data []byte) []byte {
	tb.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	switch c {
	case extract.None:
		return data
	case extract.Gzip:
		w = gzip.NewWriter(&b)
	case extract.Zstd:
		zw, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
		if err != nil {
			tb.Fatal(err)
		}
		w = zw
	default:
		tb.Fatalf("compression %q", c)
	}
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

var compressions = []extract.Compression{extract.None, extract.Gzip, extract.Zstd}

func name(c extract.Compression) string {
	if c == extract.None {
		return "tar"
	}
	return string(c)
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// sandbox is a target directory inside a parent that also holds a sibling
// directory with a file, so that a test can tell nothing was written
// beside or above the target.
type sandbox struct {
	parent, dir string
	before      map[string]string
}

func newSandbox(tb testing.TB) *sandbox {
	tb.Helper()
	parent := tb.TempDir()
	s := &sandbox{parent: parent, dir: filepath.Join(parent, "target")}
	for _, d := range []string{s.dir, filepath.Join(parent, "sibling")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(parent, "sibling", "file"), []byte("sibling"), 0o644); err != nil {
		tb.Fatal(err)
	}
	s.before = tree(tb, parent, s.dir)
	return s
}

func (s *sandbox) extract(tb testing.TB, archive []byte, c extract.Compression, lim extract.Limits) ([]extract.Entry, error) {
	tb.Helper()
	return extract.Extract(context.Background(), bytes.NewReader(archive), c, s.dir, lim)
}

// checkOutside fails unless the parent, apart from the target, is as it
// was.
func (s *sandbox) checkOutside(tb testing.TB) {
	tb.Helper()
	after := tree(tb, s.parent, s.dir)
	if fmt.Sprint(after) != fmt.Sprint(s.before) {
		tb.Errorf("outside the target changed:\nbefore %v\nafter  %v", s.before, after)
	}
}

// checkEmpty fails unless the target is there and empty.
func (s *sandbox) checkEmpty(tb testing.TB) {
	tb.Helper()
	names, err := os.ReadDir(s.dir)
	if err != nil {
		tb.Fatal(err)
	}
	if len(names) > 0 {
		tb.Errorf("target not empty after a failed extraction: %v", tree(tb, s.dir, ""))
	}
}

// tree describes everything under root but skip: path -> type, mode, and
// content or link target.
func tree(tb testing.TB, root, skip string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + t
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + digest(b)
		}
		out[filepath.ToSlash(rel)] = desc
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func wantUnsafe(tb testing.TB, err error) *extract.UnsafeError {
	tb.Helper()
	ue, ok := errors.AsType[*extract.UnsafeError](err)
	if !ok {
		tb.Fatalf("got %v, want an *UnsafeError", err)
	}
	return ue
}

// oldGNUSparse returns an archive holding one old GNU sparse file (type
// 'S', which archive/tar does not write) of size bytes, zero but for data
// at offset.
func oldGNUSparse(name string, size, offset int64, data string) []byte {
	var blk [blockSize]byte
	field := func(at, n int, v int64) { copy(blk[at:at+n], fmt.Sprintf("%0*o\x00", n-1, v)) }
	copy(blk[0:100], name)
	field(100, 8, 0o644)
	field(108, 8, 0)
	field(116, 8, 0)
	field(124, 12, int64(len(data))) // what is stored
	field(136, 12, 0)
	blk[156] = tar.TypeGNUSparse
	copy(blk[257:265], "ustar  \x00") // GNU magic and version
	field(386, 12, offset)            // the first sparse map entry
	field(398, 12, int64(len(data)))
	field(483, 12, size) // the real size
	copy(blk[148:156], "        ")
	sum := 0
	for _, b := range blk {
		sum += int(b)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	out := append(blk[:], data...)
	return append(out, make([]byte, (blockSize-len(data)%blockSize)%blockSize+2*blockSize)...)
}
