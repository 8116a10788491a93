package redact

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
)

func scrubWith(secrets ...string) (*Set, func(string) string) {
	ctx, s := WithSet(context.Background())
	Add(ctx, secrets...)
	return s, s.Scrub
}

func TestAddedSecretsMasked(t *testing.T) {
	_, scrub := scrubWith("hunter2", "p@ss w0rd!")
	got := scrub("login failed with hunter2; also tried p@ss w0rd! twice, hunter2 again")
	if strings.Contains(got, "hunter2") || strings.Contains(got, "p@ss w0rd!") {
		t.Fatalf("secret left in %q", got)
	}
	if strings.Count(got, Mask) != 3 {
		t.Errorf("got %q, want three masks", got)
	}
	if !strings.HasPrefix(got, "login failed with "+Mask) {
		t.Errorf("surrounding text damaged: %q", got)
	}
}

func TestShortSecretsIgnored(t *testing.T) {
	_, scrub := scrubWith("a", "ab", "")
	if got := scrub("a cab ab"); got != "a cab ab" {
		t.Errorf("short values were masked: %q", got)
	}
}

func TestLongestSecretMaskedWhole(t *testing.T) {
	_, scrub := scrubWith("abc", "abcdefgh")
	got := scrub("token abcdefgh end")
	if got != "token "+Mask+" end" {
		t.Errorf("got %q", got)
	}
}

func TestAddWithoutSetIsNoop(t *testing.T) {
	Add(context.Background(), "whatever") // must not panic
	AddBasic(context.Background(), "u", "p")
}

func TestAddBasic(t *testing.T) {
	ctx, s := WithSet(context.Background())
	AddBasic(ctx, "alice", "wonderland")
	b64 := base64.StdEncoding.EncodeToString([]byte("alice:wonderland"))
	got := s.Scrub("pw=wonderland header=" + b64 + " user=alice")
	if strings.Contains(got, "wonderland") || strings.Contains(got, b64) {
		t.Fatalf("basic credential left in %q", got)
	}
	if !strings.Contains(got, "user=alice") {
		t.Errorf("the user name is not a secret: %q", got)
	}
	// No password, nothing to hide.
	ctx, s = WithSet(context.Background())
	AddBasic(ctx, "bob", "")
	if got := s.Scrub("bob: " + base64.StdEncoding.EncodeToString([]byte("bob:"))); strings.Contains(got, Mask) {
		t.Errorf("masked without a password: %q", got)
	}
}

func TestShapesMasked(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJl"
	cases := []struct {
		in     string
		absent []string
		keep   []string
	}{
		{"token " + jwt + " rejected", []string{"eyJzdWIiOiJib2IifQ", "c2lnbmF0dXJl"}, []string{"token ", " rejected"}},
		{"Authorization: Bearer abcdefgh12345678", []string{"abcdefgh12345678"}, []string{"Bearer " + Mask}},
		{"authorization: bearer opaque.token-value_1", []string{"opaque.token-value_1"}, []string{"bearer " + Mask}},
		{"Authorization: Basic YWxpY2U6c2VjcmV0", []string{"YWxpY2U6c2VjcmV0"}, []string{"Basic " + Mask}},
		{"GET https://alice:s3cret@reg.test/v2/", []string{"s3cret"}, []string{"https://alice:" + Mask + "@reg.test/v2/"}},
		{"redirect to https://bucket.s3.test/blob?X-Amz-Signature=deadbeef1234&X-Amz-Credential=AKIDEXAMPLE%2F2024&other=1",
			[]string{"deadbeef1234", "AKIDEXAMPLE"}, []string{"X-Amz-Signature=" + Mask, "X-Amz-Credential=" + Mask, "other=1"}},
		{"https://cdn.test/x?sig=abc123&se=2030-01-01&sp=r", []string{"abc123", "2030-01-01"}, []string{"sig=" + Mask}},
		{"https://auth.test/token?access_token=zzz999&scope=pull", []string{"zzz999"}, []string{"scope=pull"}},
		{`"url":"https://x.test/?token=qwerty"`, []string{"qwerty"}, []string{`token=` + Mask + `"`}},
		{"uses ghp_0123456789abcdefABCDEF and dckr_pat_ABCdef123456789", []string{"0123456789abcdef", "ABCdef123456789"}, nil},
		{"hf_abcdefghijklmnop glpat-xxxxxxxxxxxxxxxx AKIAABCDEFGHIJKLMNOP", []string{"abcdefghijklmnop", "xxxxxxxxxxxxxxxx", "AKIAABCDEFGHIJKLMNOP"}, nil},
	}
	for _, tc := range cases {
		for _, s := range []*Set{nil, {}} {
			got := s.Scrub(tc.in)
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("Scrub(%q) = %q still contains %q", tc.in, got, a)
				}
			}
			for _, k := range tc.keep {
				if !strings.Contains(got, k) {
					t.Errorf("Scrub(%q) = %q lacks %q", tc.in, got, k)
				}
			}
		}
	}
}

func TestOrdinaryTextUntouched(t *testing.T) {
	for _, msg := range []string{
		"GET https://reg.test/v2/library/ubuntu/manifests/latest: MANIFEST_UNKNOWN: manifest unknown",
		"pulling blob sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef: received 10 of 20 bytes",
		"dial tcp 127.0.0.1:5000: connect: connection refused",
		"basic auth failed",
		"bearer",
	} {
		if got := (*Set)(nil).Scrub(msg); got != msg {
			t.Errorf("Scrub(%q) = %q", msg, got)
		}
	}
}

func TestConcurrentAddAndScrub(t *testing.T) {
	ctx, s := WithSet(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); Add(ctx, "secret-value") }()
		go func() { defer wg.Done(); s.Scrub("x secret-value y") }()
	}
	wg.Wait()
	if got := s.Scrub("x secret-value y"); got != "x "+Mask+" y" {
		t.Errorf("got %q", got)
	}
}

func TestURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://reg.example/v2/org/m/manifests/v1", "https://reg.example/v2/org/m/manifests/v1"},
		{"https://alice:hunter2@reg.example/v2/", "https://reg.example/v2/"},
		{"https://tok@reg.example/v2/", "https://reg.example/v2/"},
		{"https://auth.example/token?scope=repository%3Aorg%2Fm%3Apull&service=reg", "https://auth.example/token?scope=repository%3Aorg%2Fm%3Apull&service=reg"},
		{"https://s3.example/b/sha256?X-Amz-Signature=abc123&X-Amz-Credential=AKIAX&digest=sha256%3Aab", "https://s3.example/b/sha256?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]&digest=sha256%3Aab"},
		{"https://cdn.example/x?sig=s3cr3t&token=t0k#frag", "https://cdn.example/x?sig=[REDACTED]&token=[REDACTED]"},
		{"not a url", ""},
		{"", ""},
	}
	for _, tc := range cases {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
