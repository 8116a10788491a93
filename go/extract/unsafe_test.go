package extract_test

import (
	"archive/tar"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oci-client/liboci/extract"
)

// Every escape attempt and refused entry gives an *UnsafeError, after a few
// good entries that must be removed again, and nothing is written outside
// the target.
func TestExtractRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		items  func(s *sandbox) []item
		entry  string // the UnsafeError's Entry
		reason string // in its Reason
	}{
		{"absolute", one(file("/etc/extract-test-evil", "x")), "/etc/extract-test-evil", "absolute"},
		{"absolute into sibling", func(s *sandbox) []item {
			return []item{file(filepath.Join(s.parent, "sibling", "evil"), "x")}
		}, "", "absolute"},
		{"dotdot", one(file("../evil", "x")), "../evil", ".."},
		{"dotdot inside", one(file("a/../../evil", "x")), "a/../../evil", ".."},
		{"dotdot into sibling", one(file("ok/../../sibling/evil", "x")), "ok/../../sibling/evil", ".."},
		{"dotdot dir", one(dir("../evil/")), "../evil/", ".."},
		{"backslash", one(file(`..\evil`, "x")), `..\evil`, "backslash"},
		{"long name", one(file(strings.Repeat("a/", 2100)+"x", "x")), "", "longer"},

		{"symlink to /etc", one(symlink("etc", "/etc")), "etc", "absolute"},
		{"symlink to sibling", func(s *sandbox) []item {
			return []item{symlink("l", filepath.Join(s.parent, "sibling"))}
		}, "l", "absolute"},
		{"symlink ..", one(symlink("l", "..")), "l", "leaves"},
		{"symlink ../..", one(symlink("l", "../..")), "l", "leaves"},
		{"nested symlink ../..", one(symlink("ok/l", "../../sibling")), "ok/l", "leaves"},
		{"symlink .. after a name", one(symlink("d", "."), symlink("e", "d/..")), "e", "after a name"},
		{"symlink backslash", one(symlink("l", `..\..\sibling`)), "l", "backslash"},
		{"symlink empty", one(symlink("l", "")), "l", "empty"},
		{"file through symlink", one(symlink("l", "ok"), file("l/evil", "x")), "l/evil", "through a symlink"},
		{"file through symlink to root", one(symlink("l", "."), file("l/evil", "x")), "l/evil", "through a symlink"},
		{"file deep through symlink", one(symlink("ok/l", "."), file("ok/l/l/evil", "x")), "ok/l/l/evil", "through a symlink"},
		{"dir through symlink", one(symlink("l", "ok"), dir("l/sub/")), "l/sub/", "through a symlink"},
		{"symlink through symlink", one(symlink("l", "ok"), symlink("l/m", "a")), "l/m", "through a symlink"},
		{"hard link through symlink", one(symlink("l", "ok"), hardlink("l/h", "ok/a")), "l/h", "through a symlink"},

		{"hard link to /etc/passwd", one(hardlink("p", "/etc/passwd")), "p", "absolute"},
		{"hard link to ../x", one(hardlink("p", "../sibling/file")), "p", ".."},
		{"hard link to a later file", one(hardlink("p", "later"), file("later", "x")), "p", "not a file extracted earlier"},
		{"hard link to a directory", one(hardlink("p", "ok")), "p", "not a file extracted earlier"},
		{"hard link to a symlink", one(symlink("l", "ok/a"), hardlink("p", "l")), "p", "not a file extracted earlier"},
		{"hard link to the root", one(hardlink("p", "./")), "p", "not a file extracted earlier"},
		{"hard link to itself", one(hardlink("p", "p")), "p", "not a file extracted earlier"},

		{"char device", one(special("null", tar.TypeChar)), "null", "character device"},
		{"block device", one(special("sda", tar.TypeBlock)), "sda", "block device"},
		{"fifo", one(special("fifo", tar.TypeFifo)), "fifo", "FIFO"},
		{"contiguous file", one(special("c", tar.TypeCont)), "c", "entry type"},
		{"unknown type", one(special("u", 'Z')), "u", "entry type"},

		{"duplicate file", one(file("ok/a", "again")), "ok/a", "appears twice"},
		{"duplicate with ./", one(file("./ok//a", "again")), "./ok//a", "appears twice"},
		{"file replaced by symlink", one(symlink("ok/a", "../top")), "ok/a", "appears twice"},
		{"file replaced by internal symlink", one(symlink("ok/a", "b")), "ok/a", "appears twice"},
		{"file replaced by hard link", one(file("ok/b", "b"), hardlink("ok/a", "ok/b")), "ok/a", "appears twice"},
		{"file replaced by directory", one(dir("ok/a/")), "ok/a/", "appears twice"},
		{"directory replaced by file", one(file("ok", "x")), "ok", "appears twice"},
		{"implicit directory replaced by symlink", one(file("n/f", "x"), symlink("n", "ok")), "n", "appears twice"},
		{"symlink replaced by directory", one(symlink("l", "ok"), dir("l/")), "l/", "appears twice"},
		{"file under a file", one(file("ok/a/x", "x")), "ok/a/x", "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			// Good entries first, so that there is something to remove.
			items := append([]item{dir("ok/"), file("ok/a", "hello"), file("top", "x")}, tc.items(s)...)
			archive := tarOf(t, items...)
			for _, c := range []extract.Compression{extract.None, extract.Gzip} {
				_, err := s.extract(t, compress(t, c, archive), c, extract.Limits{})
				ue := wantUnsafe(t, err)
				if tc.entry != "" && ue.Entry != tc.entry {
					t.Errorf("%s: Entry %q, want %q", name(c), ue.Entry, tc.entry)
				}
				if !strings.Contains(ue.Reason, tc.reason) {
					t.Errorf("%s: Reason %q, want it to say %q", name(c), ue.Reason, tc.reason)
				}
				s.checkEmpty(t)
				s.checkOutside(t)
			}
		})
	}
}

func one(items ...item) func(*sandbox) []item {
	return func(*sandbox) []item { return items }
}

// Symlinks that stay inside, however they get there, are fine.
func TestExtractSymlinksInside(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	archive := tarOf(t,
		file("a/b/c", "x"),
		symlink("a/b/up", "../../a/b/c"),
		symlink("a/b/root", "../.."),
		symlink("a/dot", "."),
		symlink("a/self/", "./b/./c"),
		symlink("dangling", "a/nothing"),
	)
	got, err := s.extract(t, archive, extract.None, extract.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Errorf("got %d entries, want 8: %+v", len(got), got)
	}
	s.checkOutside(t)
}
