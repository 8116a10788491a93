package server

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

type answer struct {
	status int
	header http.Header
	body   []byte
}

func ask(t *testing.T, base, method, path string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	// No transparent gzip: the answer is compared byte for byte.
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	resp.Header.Del("Date")
	// A multi-range answer's boundary is random: named the same in every answer.
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && params["boundary"] != "" {
		body = bytes.ReplaceAll(body, []byte(params["boundary"]), []byte("BOUNDARY"))
		resp.Header.Set("Content-Type", strings.ReplaceAll(resp.Header.Get("Content-Type"), params["boundary"], "BOUNDARY"))
	}
	return answer{resp.StatusCode, resp.Header, body}
}

// The registry answers every blob request exactly as distribution alone
// does on the same storage (status, headers, body), and sends from the
// blob's file precisely the answers that carry blob data.
func TestBlobAnswersFromTheFileMatchDistributions(t *testing.T) {
	s := start(t, Config{Root: t.TempDir()})
	a := pushArtifact(t, s, "models/served:v1")
	pushArtifact(t, s, "models/other:v1")
	d, _, _ := v1.SHA256(bytes.NewReader(a.payload))
	blob := "/v2/models/served/blobs/" + d.String()
	size := len(a.payload)
	plain := httptest.NewServer(s.app) // distribution without the file path
	defer plain.Close()

	cases := []struct {
		name, method, path string
		header             map[string]string
		fromFile           bool
	}{
		{"whole blob", "GET", blob, nil, true},
		{"a range", "GET", blob, map[string]string{"Range": "bytes=10-99"}, true},
		{"a suffix range", "GET", blob, map[string]string{"Range": "bytes=-50"}, true},
		{"an open range", "GET", blob, map[string]string{"Range": fmt.Sprintf("bytes=%d-", size-7)}, true},
		{"the last byte", "GET", blob, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", size-1, size-1)}, true},
		{"a range past the end", "GET", blob, map[string]string{"Range": fmt.Sprintf("bytes=%d-", size+10)}, false},
		{"two ranges", "GET", blob, map[string]string{"Range": "bytes=0-1,5-6"}, false},
		{"a matching ETag", "GET", blob, map[string]string{"If-None-Match": `"` + d.String() + `"`}, false},
		{"HEAD", "HEAD", blob, nil, false},
		{"another repository's blob", "GET", "/v2/models/nothere/blobs/" + d.String(), nil, false},
		{"an unknown digest", "GET", "/v2/models/served/blobs/sha256:" + fmt.Sprintf("%064x", 1), nil, false},
		{"a malformed digest", "GET", "/v2/models/served/blobs/sha256:../../x", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.files.sent.Load()
			got := ask(t, s.URL(), c.method, c.path, c.header)
			want := ask(t, plain.URL, c.method, c.path, c.header)
			if sent := s.files.sent.Load() - before; sent != map[bool]int64{true: 1}[c.fromFile] {
				t.Errorf("%d bodies sent from the file, want fromFile=%v", sent, c.fromFile)
			}
			if got.status != want.status || !bytes.Equal(got.body, want.body) {
				t.Fatalf("answered %d with %d bytes; distribution: %d with %d bytes", got.status, len(got.body), want.status, len(want.body))
			}
			for k := range mergeKeys(got.header, want.header) {
				if !slices.Equal(got.header.Values(k), want.header.Values(k)) {
					t.Errorf("header %s: %q, distribution: %q", k, got.header.Values(k), want.header.Values(k))
				}
			}
			if c.fromFile && got.status/100 != 2 {
				t.Fatalf("status %d", got.status)
			}
		})
	}
	if whole := ask(t, s.URL(), "GET", blob, nil); !bytes.Equal(whole.body, a.payload) {
		t.Fatalf("the blob's body differs from what was pushed")
	}
}

func mergeKeys(hs ...http.Header) map[string]bool {
	keys := map[string]bool{}
	for _, h := range hs {
		for k := range h {
			keys[k] = true
		}
	}
	return keys
}

// A pull-through cache serves blobs through distribution alone: a HEAD there
// may fetch from the upstream.
func TestProxyHasNoFilePath(t *testing.T) {
	upstream := start(t, Config{Root: t.TempDir()})
	proxy := start(t, Config{Root: t.TempDir(), ProxyURL: upstream.URL()})
	if proxy.files != nil {
		t.Fatal("a pull-through cache sends blobs from files")
	}
	checkArtifact(t, proxy, pushArtifact(t, upstream, "models/cached:v1"))
}
