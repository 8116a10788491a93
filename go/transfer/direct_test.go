package transfer_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/transfer"
)

// Blobs big enough for O_DIRECT, with sizes that leave an unaligned tail,
// streamed and chunked, from scratch and resumed from an unaligned partial
// (which the sink then writes buffered), and with Buffered set.
func TestDownloadLargeBlobs(t *testing.T) {
	t.Parallel()
	const size = transfer.DirectMin + 3<<20 + 12345
	data := testutil.RandomBytes(t, size)
	for _, tc := range []struct {
		name        string
		connections int
		buffered    bool
		partial     int
		cutAt       int // the first response breaks here (0: never)
	}{
		{name: "stream", connections: 1},
		{name: "chunked", connections: 4},
		{name: "stream/buffered", connections: 1, buffered: true},
		{name: "chunked/buffered", connections: 4, buffered: true},
		{name: "stream/resumed-unaligned", connections: 1, partial: 3<<20 + 77},
		{name: "chunked/resumed-unaligned", connections: 4, partial: 1<<20 + 5},
		{name: "stream/broken-unaligned", connections: 1, cutAt: 2<<20 + 999},
		{name: "chunked/broken-unaligned", connections: 4, cutAt: 1<<20 + 999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
				if tc.cutAt > 0 && n == 0 {
					start, _, _ := parseRange(r.Header.Get("Range"), size)
					s.cut(w, r, tc.cutAt-start, false)
					return true
				}
				return false
			})
			dest := destIn(t)
			if tc.partial > 0 {
				writePartial(t, dest, data[:tc.partial], meta{Digest: digestOf(data).String, Size: size, Valid: -1})
			}
			o := options(size)
			o.Connections, o.ChunkSize = tc.connections, 2<<20
			p := &transfer.Progress{}
			res, err := transfer.Download(transfer.WithProgress(testCtx(t), p), httpClient(t), s.URL(), digestOf(data), transfer.Destination{Path: dest, Policy: transfer.Policy{Buffered: tc.buffered}}, o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Size != size {
				t.Errorf("Download returned %d", res.Size)
			}
			wantFile(t, dest, data)
			if got := p.Snapshot().BytesDone; got != size {
				t.Errorf("progress ends at %d, want %d", got, size)
			}
			if tc.partial > 0 {
				if r := s.Ranges(); len(r) == 0 || r[0] != fmt.Sprintf("bytes=%d-%d", tc.partial, min(size, tc.partial+int(o.ChunkSize))-1) && r[0] != fmt.Sprintf("bytes=%d-%d", tc.partial, size-1) {
					t.Errorf("first request %q, want one from byte %d", r, tc.partial)
				}
			}
			if got, want := s.served.Load(), int64(size-tc.partial); got != want {
				t.Errorf("%d bytes crossed, want %d", got, want)
			}
		})
	}
}
