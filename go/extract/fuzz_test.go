package extract_test

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"

	"github.com/oci-client/liboci/extract"
)

// FuzzExtract feeds Extract arbitrary streams: it must not panic, must
// never change anything outside the target, and must leave the target
// empty when it fails, or holding exactly what it reports when it does not.
func FuzzExtract(f *testing.F) {
	seeds := [][]byte{
		tarOf(f, dir("./a/"), file("a/b", "hello"), exe("a/x", "#!"), symlink("a/l", "b"), hardlink("c", "a/b"), globalHeader()),
		tarOf(f, file("../x", "x")),
		tarOf(f, symlink("l", "."), file("l/x", "x")),
		tarOf(f, symlink("d", "."), symlink("e", "d/..")),
		tarOf(f, file("a", "x"), symlink("a", "/etc")),
		tarOf(f, hardlink("p", "/etc/passwd")),
		tarOf(f, special("null", tar.TypeChar), special("fifo", tar.TypeFifo)),
		headerOnly(f, "big", 1<<30),
	}
	for _, s := range seeds {
		for c, comp := range compressions {
			f.Add(byte(c), compress(f, comp, s))
		}
	}
	f.Fuzz(func(t *testing.T, c byte, data []byte) {
		s := newSandbox(t)
		comp := compressions[int(c)%len(compressions)]
		lim := extract.Limits{MaxEntries: 1000, MaxTotalSize: 4 << 20, MaxRatio: 100, CompressedSize: int64(len(data))}
		entries, err := extract.Extract(context.Background(), bytes.NewReader(data), comp, s.dir, lim)
		s.checkOutside(t)
		if err != nil {
			s.checkEmpty(t)
			return
		}
		onDisk := tree(t, s.dir, "")
		delete(onDisk, ".")
		if len(onDisk) != len(entries) {
			t.Errorf("on disk %v, reported %+v", onDisk, entries)
		}
		for _, e := range entries {
			if _, ok := onDisk[e.Path]; !ok {
				t.Errorf("reported %+v, not on disk", e)
			}
		}
	})
}
