package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func blobResponse(body []byte, length int64) (*http.Request, *http.Response) {
	req, _ := http.NewRequest(http.MethodGet, "http://upstream.test/v2/m/blobs/"+digest.FromString("right").String(), nil)
	return req, &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: length}
}

// readExactly reads as distribution's proxy does: the blob's size, no more.
func readExactly(r io.Reader, n int64) ([]byte, error) {
	var b bytes.Buffer
	_, err := io.CopyN(&b, r, n)
	return b.Bytes(), err
}

func TestCheckedBlobPassesTheBlob(t *testing.T) {
	req, resp := blobResponse([]byte("right"), 5)
	checkBlob(context.Background(), req, resp, digest.FromString("right"))
	got, err := readExactly(resp.Body, 5)
	if err != nil || string(got) != "right" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestCheckedBlobFailsBeforeTheLastByte(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		length int64
		want   string
		kept   int // bytes that may pass before the error
	}{
		{"wrong bytes", "wrong", 5, "not the blob", 4},
		// Without a length the check comes at EOF, after the bytes.
		{"unknown length", "wrong", -1, "not the blob", 5},
		{"longer than announced", "right!", 5, "bytes where 5", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, resp := blobResponse([]byte(tc.body), tc.length)
			checkBlob(context.Background(), req, resp, digest.FromString("right"))
			got, err := io.ReadAll(resp.Body)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if len(got) > tc.kept {
				t.Fatalf("%q passed: the last bytes must not", got)
			}
		})
	}
}

func TestCheckedBlobOnlyForWholeBlobs(t *testing.T) {
	req, resp := blobResponse([]byte("wrong"), 5)
	req.Header.Set("Range", "bytes=0-")
	checkBlob(context.Background(), req, resp, digest.FromString("right"))
	if _, ok := resp.Body.(*checkedBlob); ok {
		t.Fatal("a range was checked against the whole blob's digest")
	}
	if _, ok := upstreamBlob(req); ok {
		t.Fatal("a range request counted as a blob GET")
	}
	m, _ := http.NewRequest(http.MethodGet, "http://upstream.test/v2/m/manifests/v1", nil)
	if _, ok := upstreamBlob(m); ok {
		t.Fatal("a manifest counted as a blob")
	}
}
