package extract_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/oci-client/liboci/extract"
)

// A model-like archive with "./" prefixes, directories the archive leaves
// out, a repeated directory, a file larger than the copy buffer, a setuid
// executable, symlinks within the tree, a hard link, an empty file and a PAX
// global header.
func normalArchive(tb testing.TB) ([]byte, []extract.Entry, map[string][]byte) {
	weights := randomBytes(3<<20+123, 1)
	config, script := []byte(`{"a":1}`), []byte("#!/bin/sh\n")
	archive := tarOf(tb,
		globalHeader(),
		dir("./"),
		dir("./models/"),
		file("./models/config.json", string(config)),
		file("models/weights/model.safetensors", string(weights)),
		exe("bin/run.sh", string(script)),
		symlink("models/latest", "weights/model.safetensors"),
		symlink("bin/config", "../models/config.json"),
		hardlink("models/copy.safetensors", "./models/weights/model.safetensors"),
		dir("models"),
		file("empty", ""),
	)
	want := []extract.Entry{
		{Path: "models", Type: extract.Dir, Mode: 0o755},
		{Path: "models/config.json", Type: extract.File, Size: int64(len(config)), Digest: digest(config), Mode: 0o644},
		{Path: "models/weights", Type: extract.Dir, Mode: 0o755},
		{Path: "models/weights/model.safetensors", Type: extract.File, Size: int64(len(weights)), Digest: digest(weights), Mode: 0o644},
		{Path: "bin", Type: extract.Dir, Mode: 0o755},
		{Path: "bin/run.sh", Type: extract.File, Size: int64(len(script)), Digest: digest(script), Mode: 0o755},
		{Path: "models/latest", Type: extract.Symlink, Target: "weights/model.safetensors"},
		{Path: "bin/config", Type: extract.Symlink, Target: "../models/config.json"},
		{Path: "models/copy.safetensors", Type: extract.File, Size: int64(len(weights)), Digest: digest(weights), Mode: 0o644},
		{Path: "empty", Type: extract.File, Digest: digest(nil), Mode: 0o644},
	}
	content := map[string][]byte{
		"models/config.json":               config,
		"models/weights/model.safetensors": weights,
		"bin/run.sh":                       script,
		"models/latest":                    weights, // read through the link
		"bin/config":                       config,
		"models/copy.safetensors":          weights,
		"empty":                            {},
	}
	return archive, want, content
}

func TestExtract(t *testing.T) {
	t.Parallel()
	archive, want, content := normalArchive(t)
	for _, c := range compressions {
		t.Run(name(c), func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			blob := compress(t, c, archive)
			got, err := s.extract(t, blob, c, extract.Limits{CompressedSize: int64(len(blob))})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("entries:\n got %+v\nwant %+v", got, want)
			}
			s.checkOutside(t)
			onDisk := tree(t, s.dir, "")
			delete(onDisk, ".")
			if len(onDisk) != len(want) {
				t.Errorf("on disk %v, want the %d entries", onDisk, len(want))
			}
			for _, e := range want {
				p := filepath.Join(s.dir, e.Path)
				fi, err := os.Lstat(p)
				if err != nil {
					t.Error(err)
					continue
				}
				if fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
					t.Errorf("%s: mode %v", e.Path, fi.Mode())
				}
				switch e.Type {
				case extract.Dir:
					if !fi.IsDir() {
						t.Errorf("%s: mode %v, want a directory", e.Path, fi.Mode())
					}
				case extract.Symlink:
					if target, err := os.Readlink(p); err != nil || target != e.Target {
						t.Errorf("%s: link to %q, %v; want %q", e.Path, target, err, e.Target)
					}
				case extract.File:
					if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o100 != os.FileMode(e.Mode)&0o100 {
						t.Errorf("%s: mode %v, want a regular file like %o", e.Path, fi.Mode(), e.Mode)
					}
				}
				if b, ok := content[e.Path]; ok {
					if got, err := os.ReadFile(p); err != nil || digest(got) != digest(b) {
						t.Errorf("%s: content %d bytes, %v; want %d bytes", e.Path, len(got), err, len(b))
					}
				}
			}
			orig, _ := os.Stat(filepath.Join(s.dir, "models/weights/model.safetensors"))
			link, _ := os.Stat(filepath.Join(s.dir, "models/copy.safetensors"))
			if orig == nil || link == nil || !os.SameFile(orig, link) {
				t.Error("the hard link is not the same file as its target")
			}
		})
	}
}

func TestExtractEmptyArchive(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	got, err := s.extract(t, tarOf(t, dir("./")), extract.None, extract.Limits{})
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want nothing", got, err)
	}
	s.checkEmpty(t)
}

func TestExtractTargetDir(t *testing.T) {
	t.Parallel()
	archive := tarOf(t, file("a", "x"))
	t.Run("not empty", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		if err := os.WriteFile(filepath.Join(s.dir, "mine"), []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := s.extract(t, archive, extract.None, extract.Limits{})
		if err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("got %v, want a not-empty error", err)
		}
		if b, err := os.ReadFile(filepath.Join(s.dir, "mine")); err != nil || string(b) != "keep" {
			t.Errorf("existing file: %q, %v", b, err)
		}
		if _, err := os.Lstat(filepath.Join(s.dir, "a")); err == nil {
			t.Error("extracted into a non-empty directory")
		}
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "missing")
		if _, err := extract.Extract(context.Background(), strings.NewReader(string(archive)), extract.None, missing, extract.Limits{}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("got %v, want ErrNotExist", err)
		}
	})
	t.Run("unknown compression", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		if _, err := s.extract(t, archive, "xz", extract.Limits{}); err == nil || errors.Is(err, extract.ErrCorrupt) {
			t.Fatalf("got %v, want an unknown-compression error", err)
		}
		s.checkEmpty(t)
	})
}

// failingReader gives data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// An error from the caller's reader is reported as itself, not as a corrupt
// archive, and what was written is removed.
func TestExtractSourceError(t *testing.T) {
	t.Parallel()
	archive := tarOf(t, file("a", "first"), file("b", strings.Repeat("x", 100_000)))
	fire := errors.New("disk on fire")
	for _, c := range compressions {
		t.Run(name(c), func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			blob := compress(t, c, archive)
			r := &failingReader{data: blob[:len(blob)/2], err: fire}
			_, err := extract.Extract(context.Background(), r, c, s.dir, extract.Limits{})
			if !errors.Is(err, fire) || errors.Is(err, extract.ErrCorrupt) {
				t.Fatalf("got %v, want the reader's error", err)
			}
			s.checkEmpty(t)
			s.checkOutside(t)
		})
	}
}

// cancelAfter cancels a context once n bytes have been read through it.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestExtractCancel(t *testing.T) {
	t.Parallel()
	var items []item
	for i := range 8 {
		items = append(items, file("d/f"+string(rune('0'+i)), string(randomBytes(512<<10, uint64(i)))))
	}
	archive := tarOf(t, items...)
	t.Run("before", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := extract.Extract(ctx, strings.NewReader(string(archive)), extract.None, s.dir, extract.Limits{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		s.checkEmpty(t)
	})
	for _, c := range compressions {
		t.Run("during/"+name(c), func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			blob := compress(t, c, archive)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := &cancelAfter{r: strings.NewReader(string(blob)), n: len(blob) / 3, cancel: cancel}
			if _, err := extract.Extract(ctx, r, c, s.dir, extract.Limits{}); !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
			s.checkEmpty(t)
			s.checkOutside(t)
		})
	}
}

func TestUnsafeErrorMessage(t *testing.T) {
	t.Parallel()
	err := error(&extract.UnsafeError{Entry: "../x", Reason: "contains .."})
	if got, want := err.Error(), `unsafe archive entry "../x": contains ..`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// An old GNU sparse file is written out dense, and limited by its full size.
func TestExtractOldGNUSparse(t *testing.T) {
	t.Parallel()
	archive := oldGNUSparse("sparse", 10_000, 4096, "hello")
	want := make([]byte, 10_000)
	copy(want[4096:], "hello")
	s := newSandbox(t)
	got, err := s.extract(t, archive, extract.None, extract.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (extract.Entry{Path: "sparse", Type: extract.File, Size: 10_000, Digest: digest(want), Mode: 0o644}) {
		t.Errorf("entries %+v", got)
	}
	if b, err := os.ReadFile(filepath.Join(s.dir, "sparse")); err != nil || !bytes.Equal(b, want) {
		t.Errorf("content %d bytes, %v", len(b), err)
	}
	s = newSandbox(t)
	_, err = s.extract(t, archive, extract.None, extract.Limits{MaxEntrySize: 9999})
	wantUnsafe(t, err)
	s.checkEmpty(t)
}
