package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
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

// Over TLS there is no sendfile; the body is still sent from the file, and
// whole and ranged answers carry the blob's bytes.
func TestBlobsFromTheFileOverTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	s := start(t, Config{Root: t.TempDir(), TLSCert: certFile, TLSKey: keyFile})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	layer := static.NewLayer(bytes.Repeat([]byte("tensor bytes "), 100000), "application/vnd.cncf.model.weight.v1.raw")
	r, err := name.ParseReference(s.Addr() + "/models/tls:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(r.Context(), layer, remote.WithTransport(client.Transport)); err != nil {
		t.Fatalf("WriteLayer: %v", err)
	}
	d, _ := layer.Digest()
	want, _ := layer.Compressed()
	payload, _ := io.ReadAll(want)
	for _, rng := range []string{"", "bytes=1000-499999"} {
		req, _ := http.NewRequest("GET", s.URL()+"/v2/models/tls/blobs/"+d.String(), nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		before := s.files.sent.Load()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		wantBody := payload
		if rng != "" {
			wantBody = payload[1000:500000]
		}
		if !bytes.Equal(body, wantBody) || s.files.sent.Load() != before+1 {
			t.Fatalf("%q: %s, %d bytes (want %d), sent from the file: %d", rng, resp.Status, len(body), len(wantBody), s.files.sent.Load()-before)
		}
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
