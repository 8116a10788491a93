package extract_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/oci-client/liboci/extract"
)

// bomb returns a compressed archive holding one file, name, of size zero
// bytes. It is made of gzip members or zstd frames, most of them the same
// compressed MiB of zeros, so that neither building nor holding it takes
// much time or memory.
func bomb(tb testing.TB, c extract.Compression, name string, size int64) []byte {
	tb.Helper()
	var out bytes.Buffer
	out.Write(compress(tb, c, headerOnly(tb, name, size)))
	mib := compress(tb, c, make([]byte, 1<<20))
	for range size >> 20 {
		out.Write(mib)
	}
	rest := size & (1<<20 - 1)
	pad := (blockSize - rest%blockSize) % blockSize
	out.Write(compress(tb, c, make([]byte, rest+pad+2*blockSize)))
	return out.Bytes()
}

const blockSize = 512

func TestLimits(t *testing.T) {
	t.Parallel()
	files := func(n, size int) []byte {
		var items []item
		for i := range n {
			items = append(items, file("f"+strings.Repeat("x", i), strings.Repeat("a", size)))
		}
		return tarOf(t, items...)
	}
	gzBomb := bomb(t, extract.Gzip, "bomb", 200<<20)
	zsBomb := bomb(t, extract.Zstd, "bomb", 200<<20)
	skipped := bomb(t, extract.Gzip, ".", extract.RatioSlack+16<<20)
	for _, tc := range []struct {
		name   string
		c      extract.Compression
		blob   []byte
		lim    extract.Limits
		entry  string // "": extraction succeeds
		reason string
	}{
		{"entries at the limit", extract.None, files(3, 1), extract.Limits{MaxEntries: 3}, "", ""},
		{"entries over", extract.None, files(4, 1), extract.Limits{MaxEntries: 3}, "fxxx", "more than 3 entries"},
		{"skipped entries count", extract.None, tarOf(t, globalHeader(), dir("./"), file("a", ""), file("b", "")), extract.Limits{MaxEntries: 3}, "b", "more than 3 entries"},

		{"entry size at the limit", extract.None, files(1, 1000), extract.Limits{MaxEntrySize: 1000}, "", ""},
		// Nothing follows the header: the size is refused before any
		// content is read.
		{"entry size over", extract.None, headerOnly(t, "big", 1001), extract.Limits{MaxEntrySize: 1000}, "big", "more than the 1000 allowed"},
		{"entry size default", extract.None, headerOnly(t, "huge", extract.DefaultMaxEntrySize+1), extract.Limits{}, "huge", "more than the 1099511627776 allowed"},

		{"total at the limit", extract.None, files(2, 500), extract.Limits{MaxTotalSize: 1000}, "", ""},
		{"total over", extract.None, files(2, 600), extract.Limits{MaxTotalSize: 1000}, "fx", "total more than the 1000"},
		{"hard links count nothing", extract.None, tarOf(t, file("a", strings.Repeat("a", 600)), hardlink("b", "a")), extract.Limits{MaxTotalSize: 600}, "", ""},

		{"gzip bomb", extract.Gzip, gzBomb, extract.Limits{MaxRatio: 100, CompressedSize: int64(len(gzBomb))}, "bomb", "unpacks to more than"},
		{"zstd bomb, default ratio", extract.Zstd, zsBomb, extract.Limits{CompressedSize: int64(len(zsBomb))}, "bomb", "unpacks to more than"},
		// The tar reader reads through the content of the skipped root
		// entry by itself: the stream is stopped once past the budget.
		{"ratio over in skipped data", extract.Gzip, skipped, extract.Limits{MaxRatio: 1, CompressedSize: int64(len(skipped))}, ".", "unpacks to more than"},
		{"ratio disabled", extract.Gzip, skipped, extract.Limits{MaxRatio: -1, CompressedSize: int64(len(skipped))}, "", ""},
		{"ratio without a compressed size", extract.Gzip, skipped, extract.Limits{MaxRatio: 1}, "", ""},
		{"ratio not for uncompressed", extract.None, files(1, 100_000), extract.Limits{MaxRatio: 1, CompressedSize: 1}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			_, err := s.extract(t, tc.blob, tc.c, tc.lim)
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ue := wantUnsafe(t, err)
			if tc.entry != "" && ue.Entry != tc.entry {
				t.Errorf("Entry %q, want %q", ue.Entry, tc.entry)
			}
			if !strings.Contains(ue.Reason, tc.reason) {
				t.Errorf("Reason %q, want it to say %q", ue.Reason, tc.reason)
			}
			s.checkEmpty(t)
			s.checkOutside(t)
		})
	}
}

func TestCorrupt(t *testing.T) {
	t.Parallel()
	big := randomBytes(100_000, 2)
	archive := tarOf(t, file("ok/a", "hello"), file("big", string(big)), file("last", "x"))
	bigHeader := 2 * blockSize // after ok/a's header and content
	garbled := bytes.Clone(archive)
	garbled[bigHeader+1] ^= 0xff // the name, under the header checksum
	cutBetween := tarOf(t, file("ok/a", "hello"))
	cutBetween = cutBetween[:len(cutBetween)-2*blockSize]
	gz := compress(t, extract.Gzip, archive)
	zs := compress(t, extract.Zstd, archive)
	flip := func(b []byte, at int) []byte {
		b = bytes.Clone(b)
		b[at] ^= 0x55
		return b
	}
	for _, tc := range []struct {
		name string
		c    extract.Compression
		blob []byte
	}{
		{"tar cut in content", extract.None, archive[:bigHeader+blockSize+5000]},
		{"tar cut in header", extract.None, archive[:bigHeader+100]},
		{"tar cut between entries", extract.None, cutBetween},
		{"tar garbled header", extract.None, garbled},
		{"tar empty", extract.None, nil},
		{"tar not a tar", extract.None, bytes.Repeat([]byte("not a tar "), 100)},
		{"gzip cut in stream", extract.Gzip, gz[:len(gz)/2]},
		{"gzip cut in trailer", extract.Gzip, gz[:len(gz)-4]},
		{"gzip garbled", extract.Gzip, flip(gz, len(gz)/2)},
		{"gzip bad checksum", extract.Gzip, flip(gz, len(gz)-6)},
		{"gzip not gzip", extract.Gzip, archive},
		{"gzip empty", extract.Gzip, nil},
		{"zstd cut", extract.Zstd, zs[:len(zs)/2]},
		{"zstd garbled", extract.Zstd, flip(zs, len(zs)/2)},
		{"zstd garbled checksum", extract.Zstd, flip(zs, len(zs)-2)},
		{"zstd not zstd", extract.Zstd, archive},
		{"zstd empty", extract.Zstd, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			_, err := s.extract(t, tc.blob, tc.c, extract.Limits{})
			if !errors.Is(err, extract.ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			if _, ok := errors.AsType[*extract.UnsafeError](err); ok {
				t.Errorf("%v is also an UnsafeError", err)
			}
			s.checkEmpty(t)
			s.checkOutside(t)
		})
	}
	// The decoder's own error stays visible beside ErrCorrupt.
	s := newSandbox(t)
	if _, err := s.extract(t, archive[:bigHeader+blockSize+5000], extract.None, extract.Limits{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v, want it to wrap io.ErrUnexpectedEOF", err)
	}
	if _, err := s.extract(t, garbled, extract.None, extract.Limits{}); !errors.Is(err, tar.ErrHeader) {
		t.Errorf("got %v, want it to wrap tar.ErrHeader", err)
	}
}
