package capi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/redact"
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/oci"
)

// decoded is an envelope read back with every member kept, so tests can
// check which members are present at all.
type decoded struct {
	raw    map[string]json.RawMessage
	OK     bool
	Result map[string]any
	Error  map[string]any
}

func decode(t *testing.T, out []byte) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal(out, &d.raw); err != nil {
		t.Fatalf("envelope %q is not a JSON object: %v", out, err)
	}
	if err := json.Unmarshal(d.raw["ok"], &d.OK); err != nil {
		t.Fatalf("envelope %q: ok member: %v", out, err)
	}
	if r, ok := d.raw["result"]; ok {
		if err := json.Unmarshal(r, &d.Result); err != nil {
			t.Fatalf("result: %v", err)
		}
	}
	if e, ok := d.raw["error"]; ok {
		if err := json.Unmarshal(e, &d.Error); err != nil {
			t.Fatalf("error: %v", err)
		}
	}
	return d
}

// wantFailure checks a failed envelope's shape and code, and returns it.
func wantFailure(t *testing.T, out []byte, code oci.Code) decoded {
	t.Helper()
	d := decode(t, out)
	if d.OK {
		t.Fatalf("ok=true, want failure %s: %s", code, out)
	}
	if _, has := d.raw["result"]; has {
		t.Errorf("failed envelope has a result: %s", out)
	}
	if d.Error == nil {
		t.Fatalf("failed envelope without error: %s", out)
	}
	if got, _ := d.Error["code"].(string); got != string(code) {
		t.Fatalf("error code %q, want %s: %s", got, code, out)
	}
	if msg, _ := d.Error["message"].(string); msg == "" {
		t.Errorf("empty message: %s", out)
	}
	return d
}

func wantSuccess(t *testing.T, out []byte) decoded {
	t.Helper()
	d := decode(t, out)
	if !d.OK || d.Result == nil {
		t.Fatalf("want success, got %s", out)
	}
	if _, has := d.raw["error"]; has {
		t.Errorf("successful envelope has an error: %s", out)
	}
	return d
}

func request(t *testing.T, v map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tempEnv(t *testing.T) map[string]string {
	t.Helper()
	e := testutil.Env(t, "")
	e["DOCKER_CONFIG"] = t.TempDir()
	return e
}

func image(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type echoReq struct {
	abi.Control
	Value string `json:"value,omitempty"`
}

type echoResp struct {
	Echo string `json:"echo"`
}

func TestCallSuccessEnvelope(t *testing.T) {
	t.Parallel()
	out := Call(context.Background(), "Echo", []byte(`{"value":"hi","timeout_ms":1000}`), func(_ context.Context, r echoReq) (echoResp, error) {
		return echoResp{Echo: r.Value}, nil
	})
	if string(out) != `{"abi_version":2,"ok":true,"result":{"echo":"hi"}}` {
		t.Fatalf("envelope %s", out)
	}
}

func TestCallErrorEnvelope(t *testing.T) {
	t.Parallel()
	out := Call(context.Background(), "Echo", []byte(`{}`), func(context.Context, echoReq) (*echoResp, error) {
		return nil, &oci.Error{Code: oci.CodeNotFound, Status: 404, RegistryCode: "MANIFEST_UNKNOWN", Err: errors.New("no such manifest")}
	})
	want := `{"abi_version":2,"ok":false,"error":{"code":"NOT_FOUND","message":"no such manifest","status":404,"registry_code":"MANIFEST_UNKNOWN"}}`
	if string(out) != want {
		t.Fatalf("envelope\n%s\nwant\n%s", out, want)
	}
	// Without a registry answer, status and registry_code are absent.
	out = Call(context.Background(), "Echo", []byte(`{}`), func(context.Context, echoReq) (*echoResp, error) {
		return nil, errors.New("plain failure")
	})
	d := wantFailure(t, out, oci.CodeInternal)
	for _, k := range []string{"status", "registry_code"} {
		if _, has := d.Error[k]; has {
			t.Errorf("error has %q without a registry answer: %s", k, out)
		}
	}
}

// Details travel as JSON beside the message, through a wrapping error too.
func TestCallErrorDetails(t *testing.T) {
	t.Parallel()
	out := Call(context.Background(), "Echo", []byte(`{}`), func(context.Context, echoReq) (*echoResp, error) {
		inner := &oci.Error{Code: oci.CodeNoMatch, Details: map[string]any{"files": []string{"a.json"}}, Err: errors.New("none")}
		return nil, fmt.Errorf("pulling: %w", inner)
	})
	want := `{"abi_version":2,"ok":false,"error":{"code":"NO_MATCH","message":"pulling: none","details":{"files":["a.json"]}}}`
	if string(out) != want {
		t.Fatalf("envelope\n%s\nwant\n%s", out, want)
	}
}

func TestCallInvalidInput(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "not json", "{", `["array"]`, `"string"`, `{"value": 5}`, `{"timeout_ms": "soon"}`, `{"timeout_ms": 1.5}`} {
		called := false
		out := Call(context.Background(), "Echo", []byte(in), func(context.Context, echoReq) (echoResp, error) {
			called = true
			return echoResp{}, nil
		})
		wantFailure(t, out, oci.CodeInvalidArgument)
		if called {
			t.Errorf("input %q: fn called", in)
		}
	}
}

func TestCallNegativeTimeout(t *testing.T) {
	t.Parallel()
	called := false
	out := Call(context.Background(), "Echo", []byte(`{"timeout_ms":-1}`), func(context.Context, echoReq) (echoResp, error) {
		called = true
		return echoResp{}, nil
	})
	d := wantFailure(t, out, oci.CodeInvalidArgument)
	if called {
		t.Error("fn called despite a negative timeout")
	}
	if msg := d.Error["message"].(string); !strings.Contains(msg, "timeout_ms") {
		t.Errorf("message %q", msg)
	}
}

func TestCallPanic(t *testing.T) {
	t.Parallel()
	out := Call(context.Background(), "Echo", []byte(`{}`), func(context.Context, echoReq) (echoResp, error) {
		panic("something broke")
	})
	d := wantFailure(t, out, oci.CodeInternal)
	if msg := d.Error["message"].(string); !strings.Contains(msg, "something broke") {
		t.Errorf("message %q does not carry the panic value", msg)
	}
	// A runtime error panic too, and the process is still fine afterwards.
	out = Call(context.Background(), "Echo", []byte(`{}`), func(context.Context, echoReq) (echoResp, error) {
		var m map[string]int
		m["x"] = 1
		return echoResp{}, nil
	})
	wantFailure(t, out, oci.CodeInternal)
}

func TestCallPanicMessageScrubbed(t *testing.T) {
	t.Parallel()
	out := Call(context.Background(), "Echo", []byte(`{}`), func(ctx context.Context, _ echoReq) (echoResp, error) {
		redact.Add(ctx, "panic-secret-value")
		panic("failed with panic-secret-value")
	})
	wantFailure(t, out, oci.CodeInternal)
	if bytes.Contains(out, []byte("panic-secret-value")) {
		t.Errorf("panic message leaks a secret: %s", out)
	}
}

func TestCallTimeout(t *testing.T) {
	t.Parallel()
	start := time.Now()
	out := Call(context.Background(), "Echo", []byte(`{"timeout_ms":100}`), func(ctx context.Context, _ echoReq) (echoResp, error) {
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) > 100*time.Millisecond {
			return echoResp{}, fmt.Errorf("deadline %v, %v", dl, ok)
		}
		select {
		case <-ctx.Done():
			return echoResp{}, ctx.Err()
		case <-time.After(10 * time.Second):
			return echoResp{Echo: "too late"}, nil
		}
	})
	wantFailure(t, out, oci.CodeTimeout)
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("took %v", el)
	}
	// 0 and absent mean no deadline.
	for _, in := range []string{`{"timeout_ms":0}`, `{}`} {
		out := Call(context.Background(), "Echo", []byte(in), func(ctx context.Context, _ echoReq) (echoResp, error) {
			if _, ok := ctx.Deadline(); ok {
				return echoResp{}, errors.New("unexpected deadline")
			}
			return echoResp{Echo: "ok"}, nil
		})
		wantSuccess(t, out)
	}
}

func TestCallUnencodableResult(t *testing.T) {
	t.Parallel()
	out := Call(context.Background(), "Echo", []byte(`{}`), func(context.Context, echoReq) (any, error) {
		return map[string]any{"f": func() {}}, nil
	})
	wantFailure(t, out, oci.CodeInternal)
}

// The reference, digest and URL an error concerns travel beside the
// message; the URL without credentials or signatures, and the request's
// reference when the error names none.
func TestCallErrorContext(t *testing.T) {
	t.Parallel()
	in := []byte(`{"reference":"reg.example/org/m:v1"}`)
	out := Call(context.Background(), "PullManifest", in, func(context.Context, abi.PullManifestRequest) (*echoResp, error) {
		return nil, &url.Error{Op: "Get", URL: "https://alice:pw-secret@s3.example/b?X-Amz-Signature=sig-secret&digest=sha256%3Aab", Err: syscall.ECONNRESET}
	})
	d := wantFailure(t, out, oci.CodeNetwork)
	if d.Error["reference"] != "reg.example/org/m:v1" || d.Error["url"] != "https://s3.example/b?X-Amz-Signature=[REDACTED]&digest=sha256%3Aab" {
		t.Errorf("envelope %s", out)
	}
	if strings.Contains(d.Error["url"].(string), "secret") {
		t.Errorf("a secret in the url: %s", out)
	}
	// The error's own reference and digest win over the request's.
	out = Call(context.Background(), "PullManifest", in, func(context.Context, abi.PullManifestRequest) (*echoResp, error) {
		return nil, oci.About(errors.New("gone"), "reg.example/org/m@sha256:ab", "sha256:cd")
	})
	d = wantFailure(t, out, oci.CodeInternal)
	if d.Error["reference"] != "reg.example/org/m@sha256:ab" || d.Error["digest"] != "sha256:cd" {
		t.Errorf("error %v", d.Error)
	}
	if _, has := d.Error["url"]; has {
		t.Errorf("a url where none is known: %s", out)
	}
}

func TestPullManifestEnvelope(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	digest, raw := testutil.PushImage(t, reg.Ref("app", ":v1"), image(t))
	out := PullManifest(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ":v1"), "env": tempEnv(t), "timeout_ms": 10000,
	}))
	d := wantSuccess(t, out)
	if d.Result["digest"] != digest || d.Result["reference"] != reg.Ref("app", ":v1") || d.Result["size"] != float64(len(raw)) {
		t.Errorf("result %v", d.Result)
	}
	if d.Result["media_type"] != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Errorf("media_type %v", d.Result["media_type"])
	}
	got, err := base64.StdEncoding.DecodeString(d.Result["raw"].(string))
	if err != nil || !bytes.Equal(got, raw) {
		t.Errorf("raw (base64) differs from the pushed manifest: %v", err)
	}

	out = PullManifest(context.Background(), request(t, map[string]any{"reference": reg.Ref("app", ":nope"), "env": tempEnv(t)}))
	d = wantFailure(t, out, oci.CodeNotFound)
	if d.Error["status"] != float64(404) || d.Error["registry_code"] != "MANIFEST_UNKNOWN" {
		t.Errorf("error %v", d.Error)
	}
	// It says which reference and which request.
	if d.Error["reference"] != reg.Ref("app", ":nope") || !strings.HasSuffix(fmt.Sprint(d.Error["url"]), "/v2/app/manifests/nope") {
		t.Errorf("error context %v", d.Error)
	}

	out = PullManifest(context.Background(), request(t, map[string]any{"reference": "Bad Ref", "env": tempEnv(t)}))
	d = wantFailure(t, out, oci.CodeInvalidReference)
	if _, has := d.Error["status"]; has {
		t.Errorf("status without a registry answer: %s", out)
	}
}

func TestPullBlobEnvelope(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := testutil.RandomBytes(t, 5000)
	digest := testutil.PushBlob(t, reg.Ref("app", ""), data)
	dest := filepath.Join(t.TempDir(), "out", "blob")
	out := PullBlob(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ""), "env": tempEnv(t), "digest": digest, "path": dest, "size": len(data),
	}))
	d := wantSuccess(t, out)
	if d.Result["digest"] != digest || d.Result["size"] != float64(len(data)) || d.Result["path"] != dest {
		t.Errorf("result %v", d.Result)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Error("file content differs")
	}
	out = PullBlob(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ""), "env": tempEnv(t), "digest": "sha256:1234", "path": dest,
	}))
	wantFailure(t, out, oci.CodeInvalidArgument)
	out = PullBlob(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ""), "env": tempEnv(t), "digest": digest, "path": dest, "size": len(data) - 1,
	}))
	wantFailure(t, out, oci.CodeDigestMismatch)
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Error("a failed pull changed the existing file")
	}
}

func TestTestAuthenticationEnvelope(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	digest, _ := testutil.PushImage(t, reg.Ref("private", ":v1"), image(t))
	reg.Use(testutil.BasicAuth("alice", "alice-password"))
	env := tempEnv(t)
	cfg := filepath.Join(env["DOCKER_CONFIG"], "config.json")
	testutil.WriteJSON(t, cfg, testutil.AuthsConfig(map[string][2]string{reg.Host: {"alice", "alice-password"}}))
	out := TestAuthentication(context.Background(), request(t, map[string]any{"reference": reg.Ref("private", ":v1"), "env": env}))
	d := wantSuccess(t, out)
	want := map[string]any{"registry": reg.Host, "repository": "private", "anonymous": false, "source": cfg, "digest": digest}
	for k, v := range want {
		if d.Result[k] != v {
			t.Errorf("result[%s] = %v, want %v", k, d.Result[k], v)
		}
	}
	out = TestAuthentication(context.Background(), request(t, map[string]any{"reference": reg.Ref("private", ":v1"), "env": tempEnv(t)}))
	d = wantFailure(t, out, oci.CodeUnauthorized)
	if d.Error["status"] != float64(401) {
		t.Errorf("error %v", d.Error)
	}
}

func TestRequestSettings(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	testutil.PushImage(t, reg.Ref("app", ":v1"), image(t))
	var ua atomic.Value
	reg.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if testutil.IsManifest(r) {
				ua.Store(r.UserAgent())
			}
			next.ServeHTTP(w, r)
		})
	})
	out := PullManifest(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ":v1"), "env": tempEnv(t), "user_agent": "from-request/1",
	}))
	wantSuccess(t, out)
	if got, _ := ua.Load().(string); !strings.HasPrefix(got, "from-request/1") {
		t.Errorf("User-Agent %q", got)
	}
	out = PullManifest(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ":v1"), "env": tempEnv(t), "ca_file": filepath.Join(t.TempDir(), "missing.pem"),
	}))
	wantFailure(t, out, oci.CodeInvalidArgument)
}

func TestRegistryTimeout(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	testutil.PushImage(t, reg.Ref("app", ":v1"), image(t))
	reg.Use(testutil.HangManifests(t))
	start := time.Now()
	out := PullManifest(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ":v1"), "env": tempEnv(t), "timeout_ms": 300,
	}))
	wantFailure(t, out, oci.CodeTimeout)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("a 300 ms timeout took %v", el)
	}
}

// echoCredentials demands Basic credentials (any will do) and answers
// every manifest and blob request with an error quoting the credentials it
// received, as a careless registry might.
func echoCredentials(status int, code string) testutil.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pass, ok := r.BasicAuth()
			if !ok {
				w.Header().Set("WWW-Authenticate", `Basic realm="echo"`)
				testutil.RegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "log in")
				return
			}
			if !strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "/blobs/") {
				next.ServeHTTP(w, r)
				return
			}
			hdr := r.Header.Get("Authorization")
			_, b64, _ := strings.Cut(hdr, " ")
			msg := fmt.Sprintf("rejected Authorization=%q (credentials %s) user=%s password=%s url=https://%s:%s@%s/", hdr, b64, user, pass, user, pass, r.Host)
			if r.Method == http.MethodHead {
				w.WriteHeader(status)
				return
			}
			testutil.RegistryError(w, status, code, msg)
		})
	}
}

func TestSecretsNeverInEnvelopes(t *testing.T) {
	t.Parallel()
	const user, pass = "alice", "Pa55word-that-must-not-leak"
	b64 := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	secrets := []string{pass, b64}

	reg := testutil.NewRegistry(t)
	testutil.PushImage(t, reg.Ref("app", ":v1"), image(t))
	blob := testutil.PushBlob(t, reg.Ref("app", ""), []byte("blob"))
	env := tempEnv(t)
	testutil.WriteJSON(t, filepath.Join(env["DOCKER_CONFIG"], "config.json"), testutil.AuthsConfig(map[string][2]string{reg.Host: {user, pass}}))

	calls := map[string]func(context.Context, []byte) []byte{
		"PullManifest": PullManifest, "PullBlob": PullBlob, "TestAuthentication": TestAuthentication,
	}
	for _, status := range []struct {
		code int
		reg  string
	}{{403, "DENIED"}, {401, "UNAUTHORIZED"}, {400, "MANIFEST_INVALID"}} {
		reg.Use(echoCredentials(status.code, status.reg))
		for label, call := range calls {
			req := map[string]any{"reference": reg.Ref("app", ":v1"), "env": env, "log_level": "debug"}
			if label == "PullBlob" {
				req["digest"], req["path"] = blob, filepath.Join(t.TempDir(), "b")
			}
			out := call(context.Background(), request(t, req))
			d := decode(t, out)
			if _, ok := d.raw["logs"]; !ok {
				t.Errorf("%s %d: no log records at debug: %s", label, status.code, out)
			}
			if d.OK {
				t.Fatalf("%s %d: succeeded: %s", label, status.code, out)
			}
			if s, ok := testutil.Contains(out, secrets...); ok {
				t.Errorf("%s %d: envelope contains %q: %s", label, status.code, s, out)
			}
			// The registry's echo made it into the message, masked (HEAD
			// answers have no body to echo).
			if msg := d.Error["message"].(string); label != "TestAuthentication" && (!strings.Contains(msg, "user=alice") || !strings.Contains(msg, redact.Mask)) {
				t.Errorf("%s %d: message %q: the echo did not arrive masked", label, status.code, msg)
			}
		}
	}
}

func TestTokenServerEchoNeverInEnvelope(t *testing.T) {
	t.Parallel()
	const pass = "token-pass-0123456789"
	reg := testutil.NewRegistry(t)
	testutil.PushImage(t, reg.Ref("app", ":v1"), image(t))
	ts := testutil.NewTokenServer(t, "bob", "another-password")
	// Echo the credentials the token endpoint received.
	ts.Override(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		testutil.RegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad login "+u+":"+p+" header "+r.Header.Get("Authorization"))
	}))
	reg.Use(ts.Bearer("repository:app:pull"))
	env := tempEnv(t)
	testutil.WriteJSON(t, filepath.Join(env["DOCKER_CONFIG"], "config.json"), testutil.AuthsConfig(map[string][2]string{reg.Host: {"bob", pass}}))
	out := PullManifest(context.Background(), request(t, map[string]any{"reference": reg.Ref("app", ":v1"), "env": env, "log_level": "debug"}))
	wantFailure(t, out, oci.CodeUnauthorized)
	if s, ok := testutil.Contains(out, pass, testutil.BasicB64("bob", pass)); ok {
		t.Errorf("envelope contains %q: %s", s, out)
	}
	if !bytes.Contains(out, []byte("bad login")) {
		t.Errorf("the token service's message was lost: %s", out)
	}
}

func TestHelperSecretNeverInEnvelope(t *testing.T) {
	// Not parallel: it runs a helper program (see testutil.WriteHelper).
	const secret = "helper-secret-value-42"
	reg := testutil.NewRegistry(t)
	testutil.PushImage(t, reg.Ref("app", ":v1"), image(t))
	bin := t.TempDir()
	testutil.WriteHelper(t, bin, "fake", `cat >/dev/null; echo '{"ServerURL":"x","Username":"<token>","Secret":"`+secret+`"}'`)
	env := testutil.Env(t, bin)
	env["DOCKER_CONFIG"] = t.TempDir()
	testutil.WriteJSON(t, filepath.Join(env["DOCKER_CONFIG"], "config.json"), map[string]any{"credsStore": "fake"})
	// With Basic auth the identity token would be sent as a password; the
	// registry echoes whatever arrives.
	reg.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") {
				testutil.RegistryError(w, http.StatusForbidden, "DENIED", "no access with "+r.Header.Get("Authorization")+" / "+secret)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	out := PullManifest(context.Background(), request(t, map[string]any{"reference": reg.Ref("app", ":v1"), "env": env, "log_level": "debug"}))
	wantFailure(t, out, oci.CodeDenied)
	if bytes.Contains(out, []byte(secret)) {
		t.Errorf("envelope contains the helper's secret: %s", out)
	}

	// A failing helper that printed the secret: the CREDENTIALS error must
	// not carry it either.
	testutil.WriteHelper(t, bin, "broken", `cat >/dev/null; echo '{"Username":"bob","Secret":"`+secret+`"}'; exit 1`)
	testutil.WriteJSON(t, filepath.Join(env["DOCKER_CONFIG"], "config.json"), map[string]any{"credsStore": "broken"})
	out = PullManifest(context.Background(), request(t, map[string]any{"reference": reg.Ref("app", ":v1"), "env": env, "log_level": "debug"}))
	wantFailure(t, out, oci.CodeCredentials)
	if bytes.Contains(out, []byte(secret)) {
		t.Errorf("envelope contains the helper's secret: %s", out)
	}
}

func TestUnknownFieldIsAnInvalidArgumentNamingIt(t *testing.T) {
	t.Parallel()
	out := CacheList(context.Background(), []byte(`{"cache_dir":"/nowhere","connections":4}`))
	d := decode(t, out)
	if d.OK || d.Error["code"] != "INVALID_ARGUMENT" {
		t.Fatalf("envelope %s", out)
	}
	msg := d.Error["message"].(string)
	if !strings.Contains(msg, "CacheList") || !strings.Contains(msg, `"connections"`) {
		t.Errorf("message %q names not the export and the field", msg)
	}
	if det := d.Error["details"].(map[string]any); det["export"] != "CacheList" || det["field"] != "connections" {
		t.Errorf("details %v", det)
	}
}

func TestNumbersThatCannotApplyAreInvalidArguments(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOME": t.TempDir()}
	blob := map[string]any{"digest": "sha256:" + strings.Repeat("0", 64), "path": filepath.Join(t.TempDir(), "b")}
	for name, extra := range map[string]map[string]any{
		"retries":     {"retries": -1},
		"connections": {"connections": -2},
		"chunk size":  {"chunk_size": -1},
		"timeout":     {"read_timeout_ms": -5},
		"concurrency": {"concurrency": -1},
	} {
		req := map[string]any{"reference": "127.0.0.1:1/x:v1", "env": env, "blobs": []any{blob}}
		for k, v := range extra {
			req[k] = v
		}
		out := PullBlobs(context.Background(), request(t, req))
		if d := decode(t, out); d.OK || d.Error["code"] != "INVALID_ARGUMENT" {
			t.Errorf("%s: envelope %s, want INVALID_ARGUMENT", name, out)
		}
	}
	out := PullManifest(context.Background(), request(t, map[string]any{"reference": "127.0.0.1:1/x:v1", "env": env, "retries": -1}))
	if d := decode(t, out); d.OK || d.Error["code"] != "INVALID_ARGUMENT" {
		t.Errorf("PullManifest, negative retries: envelope %s", out)
	}
}
