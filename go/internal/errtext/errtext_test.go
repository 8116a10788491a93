package errtext

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	cases := []struct {
		label string
		err   error
		want  Kind
	}{
		{"nil", nil, Unknown},
		{"other", errors.New("mystery"), Unknown},
		{"plain answer", errors.New("http: server gave HTTP response to HTTPS client"), PlainHTTPAnswer},
		{"plain answer wrapped", &url.Error{Op: "Get", URL: "https://h/v2/", Err: errors.New("http: " + PlainHTTPAnswerText)}, PlainHTTPAnswer},
		// A ping over both schemes: the plain-HTTP answer wins over the refusal.
		{"ping both", errors.New("Get https://h/v2/: http: server gave HTTP response to HTTPS client; Get http://h/v2/: dial tcp: connection refused"), PlainHTTPAnswer},
		{"scheme", errors.New(`Get "ftp://h/x": unsupported protocol scheme "ftp"`), UnsupportedScheme},
		{"refused", errors.New("Get https://x/v2/: dial tcp 127.0.0.1:1: connect: connection refused"), ConnectionRefused},
		{"manifest digest", fmt.Errorf("fetching: %w", fmt.Errorf("manifest digest: %q does not match requested digest: %q for %q", "sha256:a", "sha256:b", "r")), DigestMismatch},
		{"manifest size", errors.New("GET https://h/v2/r/manifests/sha256:b: Content-Length header 3 does not match expected size 4"), DigestMismatch},
		// Other "does not match" messages are not digest checks.
		{"pagination", errors.New(`pagination URL scheme "http" does not match registry scheme "https"`), Unknown},
	}
	for _, tc := range cases {
		if got := Of(tc.err); got != tc.want {
			t.Errorf("%s: Of(%v) = %d, want %d", tc.label, tc.err, got, tc.want)
		}
	}
}

// TestProducersStillSaySo checks the texts against their producers where a
// test can make one produce its error: net/http's wording is what the
// table relies on.
func TestProducersStillSaySo(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer plain.Close()
	u, _ := url.Parse(plain.URL)
	u.Scheme = "https"
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u.String(), nil)
	if _, err := http.DefaultClient.Do(req); Of(err) != PlainHTTPAnswer {
		t.Errorf("https to a plain server: %v", err)
	}
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodGet, "ftp://example.invalid/x", nil)
	if _, err := http.DefaultClient.Do(req); Of(err) != UnsupportedScheme {
		t.Errorf("ftp: %v", err)
	}
}

// TestNoTextMatchingElsewhere keeps Of the only reader of error messages:
// a strings function applied to an Error() anywhere else in the module
// fails here, with where it is.
func TestNoTextMatchingElsewhere(t *testing.T) {
	readsText := regexp.MustCompile(`strings\.\w+\([^()]*\.Error\(\)`)
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		if filepath.Base(filepath.Dir(p)) == "errtext" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if readsText.MatchString(line) {
				t.Errorf("%s:%d classifies by message text; add the text to errtext.Of instead: %s", p, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
