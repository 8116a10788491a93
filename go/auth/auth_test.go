package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/oci-client/liboci/internal/envmap"
	"github.com/oci-client/liboci/internal/testutil"
)

// newEnv returns an environment with an empty temporary HOME and a PATH
// holding a temporary bin directory (returned) for fake helpers.
func newEnv(t *testing.T) (envmap.Env, string) {
	t.Helper()
	bin := t.TempDir()
	return envmap.Env(testutil.Env(t, bin)), bin
}

// dockerConfig points DOCKER_CONFIG at a new directory holding cfg.
func dockerConfig(t *testing.T, env envmap.Env, cfg any) string {
	t.Helper()
	dir := t.TempDir()
	env["DOCKER_CONFIG"] = dir
	p := filepath.Join(dir, "config.json")
	testutil.WriteJSON(t, p, cfg)
	return p
}

func lookup(t *testing.T, env envmap.Env, host, repo string) Credential {
	t.Helper()
	c, err := Lookup(context.Background(), env, host, repo)
	if err != nil {
		t.Fatalf("Lookup(%s, %s): %v", host, repo, err)
	}
	return c
}

func auths(entries map[string]any) map[string]any { return map[string]any{"auths": entries} }

func TestAuthField(t *testing.T) {
	env, _ := newEnv(t)
	// A password may itself contain colons: only the first one splits.
	p := dockerConfig(t, env, auths(map[string]any{
		"reg.test": map[string]string{"auth": testutil.BasicB64("alice", "pa:ss:word")},
	}))
	c := lookup(t, env, "reg.test", "team/app")
	if c.Username != "alice" || c.Password != "pa:ss:word" {
		t.Fatalf("got %q/%q, want alice/pa:ss:word", c.Username, c.Password)
	}
	if c.Source != p {
		t.Errorf("Source = %q, want %q", c.Source, p)
	}
	if c.Anonymous() {
		t.Error("Anonymous() = true for a found credential")
	}
}

func TestAuthFieldWithSurroundingSpace(t *testing.T) {
	env, _ := newEnv(t)
	dockerConfig(t, env, auths(map[string]any{
		"reg.test": map[string]string{"auth": " " + testutil.BasicB64("bob", "pw") + "\n"},
	}))
	if c := lookup(t, env, "reg.test", "x"); c.Username != "bob" || c.Password != "pw" {
		t.Fatalf("got %q/%q", c.Username, c.Password)
	}
}

func TestUsernamePasswordFields(t *testing.T) {
	env, _ := newEnv(t)
	dockerConfig(t, env, auths(map[string]any{
		"reg.test": map[string]string{"username": "carol", "password": "s3cret"},
	}))
	if c := lookup(t, env, "reg.test", "x"); c.Username != "carol" || c.Password != "s3cret" {
		t.Fatalf("got %q/%q", c.Username, c.Password)
	}
}

func TestAuthFieldWinsOverSeparateFields(t *testing.T) {
	env, _ := newEnv(t)
	dockerConfig(t, env, auths(map[string]any{
		"reg.test": map[string]string{
			"auth":     testutil.BasicB64("fromauth", "authpw"),
			"username": "fromfield",
			"password": "fieldpw",
		},
	}))
	if c := lookup(t, env, "reg.test", "x"); c.Username != "fromauth" || c.Password != "authpw" {
		t.Fatalf("got %q/%q, want the auth field's", c.Username, c.Password)
	}
}

func TestIdentityToken(t *testing.T) {
	env, _ := newEnv(t)
	dockerConfig(t, env, auths(map[string]any{
		"reg.test": map[string]string{"username": "<token>", "identitytoken": "refresh-tok-123"},
	}))
	c := lookup(t, env, "reg.test", "x")
	if c.IdentityToken != "refresh-tok-123" {
		t.Fatalf("IdentityToken = %q", c.IdentityToken)
	}
	cfg, err := authn.Authorization(context.Background(), c.Authenticator())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IdentityToken != "refresh-tok-123" {
		t.Errorf("authenticator IdentityToken = %q", cfg.IdentityToken)
	}
	if got := c.Secrets(); len(got) != 1 || got[0] != "refresh-tok-123" {
		t.Errorf("Secrets() = %q", got)
	}
}

func TestRegistryToken(t *testing.T) {
	env, _ := newEnv(t)
	dockerConfig(t, env, auths(map[string]any{
		"reg.test": map[string]string{"registrytoken": "bearer-abc"},
	}))
	c := lookup(t, env, "reg.test", "x")
	if c.RegistryToken != "bearer-abc" || c.Anonymous() {
		t.Fatalf("got %+v", c)
	}
}

func TestDockerHubAliases(t *testing.T) {
	keys := []string{
		"docker.io",
		"index.docker.io",
		"https://index.docker.io/v1/",
		"https://index.docker.io/v1",
		"registry-1.docker.io",
		"https://registry-1.docker.io/v2/",
		"registry.hub.docker.com",
	}
	for _, key := range keys {
		for _, host := range []string{"index.docker.io", "docker.io", "registry-1.docker.io"} {
			t.Run(key+"~"+host, func(t *testing.T) {
				env, _ := newEnv(t)
				dockerConfig(t, env, auths(map[string]any{
					key:           map[string]string{"auth": testutil.BasicB64("hubuser", "hubpw")},
					"ghcr.io":     map[string]string{"auth": testutil.BasicB64("other", "otherpw")},
					"quay.io/foo": map[string]string{"auth": testutil.BasicB64("other2", "otherpw2")},
				}))
				c := lookup(t, env, host, "library/ubuntu")
				if c.Username != "hubuser" || c.Password != "hubpw" {
					t.Fatalf("got %q/%q, want hubuser/hubpw", c.Username, c.Password)
				}
			})
		}
	}
}

func TestKeyNormalization(t *testing.T) {
	cases := []struct {
		key, host string
		match     bool
	}{
		{"reg.test", "reg.test", true},
		{"https://reg.test", "reg.test", true},
		{"http://reg.test/", "reg.test", true},
		{"https://reg.test/v2/", "reg.test", true},
		{"https://reg.test/v1/", "reg.test", true},
		{"REG.Test", "reg.test", true},
		{"reg.test:5000", "reg.test:5000", true},
		{"reg.test", "reg.test:5000", false},
		{"reg.test:5000", "reg.test", false},
		{"reg.test:5000", "reg.test:5001", false},
		{"other.test", "reg.test", false},
		{"reg.test.evil", "reg.test", false},
	}
	for _, tc := range cases {
		t.Run(tc.key+"~"+tc.host, func(t *testing.T) {
			env, _ := newEnv(t)
			dockerConfig(t, env, auths(map[string]any{
				tc.key: map[string]string{"auth": testutil.BasicB64("u", "pw")},
			}))
			c := lookup(t, env, tc.host, "ns/app")
			if got := !c.Anonymous(); got != tc.match {
				t.Fatalf("matched = %v, want %v (got %+v)", got, tc.match, c)
			}
		})
	}
}

func TestMostSpecificKeyWins(t *testing.T) {
	env, _ := newEnv(t)
	dockerConfig(t, env, auths(map[string]any{
		"reg.test":               map[string]string{"auth": testutil.BasicB64("host", "pw1")},
		"reg.test/team":          map[string]string{"auth": testutil.BasicB64("team", "pw2")},
		"reg.test/team/proj":     map[string]string{"auth": testutil.BasicB64("proj", "pw3")},
		"https://reg.test/other": map[string]string{"auth": testutil.BasicB64("other", "pw4")},
	}))
	cases := map[string]string{
		"team/proj/app":  "proj",
		"team/proj":      "proj",
		"team/app":       "team",
		"team/projector": "team", // a prefix counts only at a path boundary
		"teamx/app":      "host",
		"other/app":      "other",
		"lib/app":        "host",
	}
	for repo, want := range cases {
		if c := lookup(t, env, "reg.test", repo); c.Username != want {
			t.Errorf("repo %s: user %q, want %q", repo, c.Username, want)
		}
	}
}

func TestNamespaceKeyOnlyDoesNotMatchOtherNamespaces(t *testing.T) {
	env, _ := newEnv(t)
	dockerConfig(t, env, auths(map[string]any{
		"reg.test/team": map[string]string{"auth": testutil.BasicB64("team", "pw")},
	}))
	if c := lookup(t, env, "reg.test", "elsewhere/app"); !c.Anonymous() {
		t.Fatalf("got %+v, want anonymous", c)
	}
	if c := lookup(t, env, "reg.test", "team/app"); c.Username != "team" {
		t.Fatalf("got %+v, want team", c)
	}
}

// helperScript records its argument, stdin and one env variable, then
// prints a credential.
const helperScript = `echo "$1" > "$OUT_DIR/args"
cat > "$OUT_DIR/stdin"
echo "$MARKER" > "$OUT_DIR/env"
printf '{"ServerURL":"x","Username":"%s","Secret":"%s"}' "$HELPER_USER" "$HELPER_SECRET"
`

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading %s: %v", p, err)
	}
	return string(b)
}

func TestCredHelper(t *testing.T) {
	env, bin := newEnv(t)
	out := t.TempDir()
	testutil.WriteHelper(t, bin, "fake", helperScript)
	env["OUT_DIR"], env["MARKER"] = out, "from-the-env-map"
	env["HELPER_USER"], env["HELPER_SECRET"] = "helperuser", "helper-secret"
	dockerConfig(t, env, map[string]any{
		"auths":       map[string]any{"reg.test:5000": map[string]string{"auth": testutil.BasicB64("inline", "inlinepw")}},
		"credHelpers": map[string]string{"reg.test:5000": "fake"},
	})
	c := lookup(t, env, "reg.test:5000", "ns/app")
	if c.Username != "helperuser" || c.Password != "helper-secret" || c.IdentityToken != "" {
		t.Fatalf("got %+v", c)
	}
	if c.Source != "docker-credential-fake" {
		t.Errorf("Source = %q", c.Source)
	}
	if got := readFile(t, filepath.Join(out, "stdin")); got != "reg.test:5000" {
		t.Errorf("helper stdin = %q, want the bare server URL", got)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(out, "args"))); got != "get" {
		t.Errorf("helper argument = %q, want get", got)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(out, "env"))); got != "from-the-env-map" {
		t.Errorf("helper saw MARKER=%q: it must run with the caller's env map", got)
	}
}

func TestCredHelperTokenUsername(t *testing.T) {
	env, bin := newEnv(t)
	env["OUT_DIR"] = t.TempDir()
	env["HELPER_USER"], env["HELPER_SECRET"] = "<token>", "identity-token-xyz"
	testutil.WriteHelper(t, bin, "fake", helperScript)
	dockerConfig(t, env, map[string]any{"credHelpers": map[string]string{"reg.test": "fake"}})
	c := lookup(t, env, "reg.test", "a")
	if c.IdentityToken != "identity-token-xyz" || c.Username != "" || c.Password != "" {
		t.Fatalf("got %+v, want an identity token only", c)
	}
}

func TestCredsStoreDockerHubServerURL(t *testing.T) {
	env, bin := newEnv(t)
	out := t.TempDir()
	env["OUT_DIR"] = out
	env["HELPER_USER"], env["HELPER_SECRET"] = "hub", "hubsecret"
	testutil.WriteHelper(t, bin, "store", helperScript)
	dockerConfig(t, env, map[string]any{"credsStore": "store"})
	for _, host := range []string{"index.docker.io", "docker.io"} {
		c := lookup(t, env, host, "library/ubuntu")
		if c.Username != "hub" || c.Password != "hubsecret" {
			t.Fatalf("%s: got %+v", host, c)
		}
		if got := readFile(t, filepath.Join(out, "stdin")); got != "https://index.docker.io/v1/" {
			t.Errorf("%s: helper stdin = %q, want docker's Hub key", host, got)
		}
	}
}

func TestCredHelpersBeatCredsStore(t *testing.T) {
	env, bin := newEnv(t)
	testutil.WriteHelper(t, bin, "specific", `cat >/dev/null; echo '{"Username":"specific","Secret":"pw-specific"}'`)
	testutil.WriteHelper(t, bin, "store", `cat >/dev/null; echo '{"Username":"store","Secret":"pw-store"}'`)
	dockerConfig(t, env, map[string]any{
		"credsStore":  "store",
		"credHelpers": map[string]string{"https://special.test": "specific"},
	})
	if c := lookup(t, env, "special.test", "a"); c.Username != "specific" {
		t.Errorf("special.test: got %q, want the credHelpers entry", c.Username)
	}
	if c := lookup(t, env, "other.test", "a"); c.Username != "store" {
		t.Errorf("other.test: got %q, want the credsStore", c.Username)
	}
}

const notFoundHelper = `cat >/dev/null; echo "credentials not found in native keychain"; exit 1
`

func TestHelperNotFoundFallsThroughToInlineEntry(t *testing.T) {
	env, bin := newEnv(t)
	testutil.WriteHelper(t, bin, "empty", notFoundHelper)
	p := dockerConfig(t, env, map[string]any{
		"credsStore": "empty",
		"auths":      map[string]any{"reg.test": map[string]string{"auth": testutil.BasicB64("inline", "inlinepw")}},
	})
	c := lookup(t, env, "reg.test", "a")
	if c.Username != "inline" || c.Password != "inlinepw" || c.Source != p {
		t.Fatalf("got %+v, want the inline entry", c)
	}
}

func TestHelperNotFoundFallsThroughToNextFile(t *testing.T) {
	env, bin := newEnv(t)
	testutil.WriteHelper(t, bin, "empty", notFoundHelper)
	dockerConfig(t, env, map[string]any{"credHelpers": map[string]string{"reg.test": "empty"}})
	authFile := filepath.Join(t.TempDir(), "auth.json")
	testutil.WriteJSON(t, authFile, auths(map[string]any{"reg.test": map[string]string{"auth": testutil.BasicB64("podman", "podpw")}}))
	env["REGISTRY_AUTH_FILE"] = authFile
	c := lookup(t, env, "reg.test", "a")
	if c.Username != "podman" || c.Source != authFile {
		t.Fatalf("got %+v, want the REGISTRY_AUTH_FILE entry", c)
	}
}

func TestHelperNotFoundAnywhereIsAnonymous(t *testing.T) {
	env, bin := newEnv(t)
	testutil.WriteHelper(t, bin, "empty", notFoundHelper)
	dockerConfig(t, env, map[string]any{"credsStore": "empty"})
	c := lookup(t, env, "reg.test", "a")
	if !c.Anonymous() {
		t.Fatalf("got %+v, want anonymous", c)
	}
}

func wantAuthError(t *testing.T, err error) *Error {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *auth.Error", err, err)
	}
	return ae
}

func TestFailingHelperDoesNotLeakSecretFromStdout(t *testing.T) {
	const secret = "hunter2-very-secret"
	cases := map[string]string{
		// A helper that printed the credential, then failed.
		"json": `cat >/dev/null; echo '{"ServerURL":"reg.test","Username":"bob","Secret":"` + secret + `"}'; exit 1`,
		// The same with a password that does not look like a token at all.
		"json plain password": `cat >/dev/null; echo '{"ServerURL":"reg.test","Username":"bob","Secret":"opensesame"}'; exit 1`,
		// Pretty-printed JSON: the secret is on a later line.
		"pretty": `cat >/dev/null; printf '{\n  "Username": "bob",\n  "Secret": "` + secret + `"\n}\n'; exit 3`,
		// A diagnostic quoting the secret in prose.
		"prose": `cat >/dev/null; echo "error: cannot use token ` + secret + ` for reg.test"; exit 1`,
		// A token-shaped secret written with quotes around it.
		"quoted": `cat >/dev/null; echo "rejected secret: \"ghp_` + "AbCdEf0123456789XyZ" + `\""; exit 1`,
	}
	for label, script := range cases {
		t.Run(label, func(t *testing.T) {
			env, bin := newEnv(t)
			testutil.WriteHelper(t, bin, "broken", script)
			dockerConfig(t, env, map[string]any{"credHelpers": map[string]string{"reg.test": "broken"}})
			_, err := Lookup(context.Background(), env, "reg.test", "a")
			if err == nil {
				t.Fatal("Lookup succeeded with a failing helper")
			}
			wantAuthError(t, err)
			msg := err.Error()
			if !strings.Contains(msg, "docker-credential-broken") {
				t.Errorf("message %q does not name the helper", msg)
			}
			for _, s := range []string{secret, "AbCdEf0123456789XyZ", "opensesame"} {
				if strings.Contains(msg, s) {
					t.Errorf("message leaks the secret: %q", msg)
				}
			}
		})
	}
}

func TestFailingHelperKeepsDiagnostic(t *testing.T) {
	env, bin := newEnv(t)
	testutil.WriteHelper(t, bin, "locked", `cat >/dev/null; echo "the keyring is locked" >&2; exit 1`)
	dockerConfig(t, env, map[string]any{"credsStore": "locked"})
	_, err := Lookup(context.Background(), env, "reg.test", "a")
	wantAuthError(t, err)
	if !strings.Contains(err.Error(), "the keyring is locked") {
		t.Errorf("message %q lost the helper's stderr", err)
	}
	// The inline entry must not be used when the helper fails for real.
	env2, bin2 := newEnv(t)
	testutil.WriteHelper(t, bin2, "locked", `cat >/dev/null; echo "locked" >&2; exit 1`)
	dockerConfig(t, env2, map[string]any{
		"credsStore": "locked",
		"auths":      map[string]any{"reg.test": map[string]string{"auth": testutil.BasicB64("u", "p")}},
	})
	if _, err := Lookup(context.Background(), env2, "reg.test", "a"); err == nil {
		t.Error("a failing helper fell through to the inline entry")
	}
}

func TestHelperMissingFromPath(t *testing.T) {
	env, _ := newEnv(t)
	dockerConfig(t, env, map[string]any{"credsStore": "nosuchhelper"})
	_, err := Lookup(context.Background(), env, "reg.test", "a")
	wantAuthError(t, err)
	if !strings.Contains(err.Error(), "docker-credential-nosuchhelper not found on PATH") {
		t.Errorf("message = %q", err)
	}
}

func TestHelperOnlyFoundOnCallersPath(t *testing.T) {
	env, bin := newEnv(t)
	testutil.WriteHelper(t, bin, "mine", `cat >/dev/null; echo '{"Username":"u","Secret":"p"}'`)
	dockerConfig(t, env, map[string]any{"credsStore": "mine"})
	if c := lookup(t, env, "reg.test", "a"); c.Username != "u" {
		t.Fatalf("got %+v", c)
	}
	// Same files, a PATH without the bin directory: the helper is gone.
	env["PATH"] = "/usr/bin:/bin"
	if _, err := Lookup(context.Background(), env, "reg.test", "a"); err == nil {
		t.Fatal("helper found although it is not on the env map's PATH")
	}
}

func TestHelperNotExecutableSkipped(t *testing.T) {
	env, bin := newEnv(t)
	p := testutil.WriteHelper(t, bin, "noexec", `echo '{"Username":"u","Secret":"p"}'`)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	dockerConfig(t, env, map[string]any{"credsStore": "noexec"})
	if _, err := Lookup(context.Background(), env, "reg.test", "a"); err == nil {
		t.Fatal("a non-executable file was run as a helper")
	}
}

func TestHelperMalformedOutput(t *testing.T) {
	env, bin := newEnv(t)
	testutil.WriteHelper(t, bin, "garbage", `cat >/dev/null; echo 'Secret=topsecretvalue not json'`)
	dockerConfig(t, env, map[string]any{"credsStore": "garbage"})
	_, err := Lookup(context.Background(), env, "reg.test", "a")
	wantAuthError(t, err)
	if strings.Contains(err.Error(), "topsecretvalue") {
		t.Errorf("message echoes the helper's stdout: %q", err)
	}
}

func TestHelperCancelled(t *testing.T) {
	env, bin := newEnv(t)
	// Not exec'd: the shell's child keeps stdout open after the shell is killed.
	testutil.WriteHelper(t, bin, "hang", "sleep 30\necho done\n")
	dockerConfig(t, env, map[string]any{"credsStore": "hang"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Lookup(ctx, env, "reg.test", "a")
	elapsed := time.Since(start)
	wantAuthError(t, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("a hung helper held the call for %v after its context expired", elapsed)
	}
}

func TestSearchOrder(t *testing.T) {
	env, _ := newEnv(t)
	home := env["HOME"]
	dockerDir := t.TempDir()
	xdg := t.TempDir()
	regAuth := filepath.Join(t.TempDir(), "registry-auth.json")
	entry := func(user string) map[string]any {
		return auths(map[string]any{"reg.test": map[string]string{"auth": testutil.BasicB64(user, user+"-pw")}})
	}
	files := []struct{ user, path string }{
		{"dockerconfig", filepath.Join(dockerDir, "config.json")},
		{"registryauthfile", regAuth},
		{"xdg", filepath.Join(xdg, "containers", "auth.json")},
		{"homecontainers", filepath.Join(home, ".config", "containers", "auth.json")},
	}
	for _, f := range files {
		testutil.WriteJSON(t, f.path, entry(f.user))
	}
	env["DOCKER_CONFIG"], env["REGISTRY_AUTH_FILE"], env["XDG_RUNTIME_DIR"] = dockerDir, regAuth, xdg
	for i, f := range files {
		c := lookup(t, env, "reg.test", "a")
		if c.Username != f.user || c.Source != f.path {
			t.Fatalf("step %d: got %q from %q, want %q from %q", i, c.Username, c.Source, f.user, f.path)
		}
		// A file with no entry for this registry passes the turn on.
		testutil.WriteJSON(t, f.path, auths(map[string]any{"unrelated.test": map[string]string{"auth": testutil.BasicB64("x", "y")}}))
	}
	if c := lookup(t, env, "reg.test", "a"); !c.Anonymous() {
		t.Fatalf("no file has an entry: got %+v, want anonymous", c)
	}
}

func TestHomeDockerConfigUsedOnlyWithoutDockerConfig(t *testing.T) {
	env, _ := newEnv(t)
	homeCfg := filepath.Join(env["HOME"], ".docker", "config.json")
	testutil.WriteJSON(t, homeCfg, auths(map[string]any{"reg.test": map[string]string{"auth": testutil.BasicB64("home", "pw")}}))
	if c := lookup(t, env, "reg.test", "a"); c.Username != "home" || c.Source != homeCfg {
		t.Fatalf("got %+v, want ~/.docker/config.json", c)
	}
	// DOCKER_CONFIG replaces ~/.docker, even when it has no config.json.
	env["DOCKER_CONFIG"] = t.TempDir()
	if c := lookup(t, env, "reg.test", "a"); !c.Anonymous() {
		t.Fatalf("got %+v from ~/.docker although DOCKER_CONFIG is set", c)
	}
}

func TestMissingFilesAreAnonymous(t *testing.T) {
	for label, env := range map[string]envmap.Env{
		"empty env": {},
		"empty dirs": {
			"HOME":               t.TempDir(),
			"DOCKER_CONFIG":      t.TempDir(),
			"XDG_RUNTIME_DIR":    t.TempDir(),
			"REGISTRY_AUTH_FILE": filepath.Join(t.TempDir(), "nope.json"),
		},
	} {
		c, err := Lookup(context.Background(), env, "reg.test", "a")
		if err != nil || !c.Anonymous() || c.Source != "" {
			t.Errorf("%s: got %+v, %v; want anonymous, nil", label, c, err)
		}
	}
}

func TestEmptyFileIsSkipped(t *testing.T) {
	env, _ := newEnv(t)
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "config.json"), []byte("  \n"), 0o600)
	env["DOCKER_CONFIG"] = dir
	authFile := filepath.Join(t.TempDir(), "auth.json")
	testutil.WriteJSON(t, authFile, auths(map[string]any{"reg.test": map[string]string{"auth": testutil.BasicB64("next", "pw")}}))
	env["REGISTRY_AUTH_FILE"] = authFile
	if c := lookup(t, env, "reg.test", "a"); c.Username != "next" {
		t.Fatalf("got %+v", c)
	}
}

func TestMalformedJSONIsError(t *testing.T) {
	env, _ := newEnv(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	testutil.WriteFile(t, p, []byte(`{"auths": {"reg.test": {"auth": "c2VjcmV0LXZhbHVl"}`), 0o600)
	env["DOCKER_CONFIG"] = dir
	// A valid file later in the search order must not rescue a broken one.
	authFile := filepath.Join(t.TempDir(), "auth.json")
	testutil.WriteJSON(t, authFile, auths(map[string]any{"reg.test": map[string]string{"auth": testutil.BasicB64("u", "p")}}))
	env["REGISTRY_AUTH_FILE"] = authFile
	_, err := Lookup(context.Background(), env, "reg.test", "a")
	wantAuthError(t, err)
	if !strings.Contains(err.Error(), p) {
		t.Errorf("message %q does not name the file", err)
	}
	if strings.Contains(err.Error(), "c2VjcmV0LXZhbHVl") {
		t.Errorf("message %q quotes the file's content", err)
	}
}

func TestWrongJSONTypeIsError(t *testing.T) {
	env, _ := newEnv(t)
	dockerConfig(t, env, map[string]any{"auths": []string{"not", "a", "map"}})
	_, err := Lookup(context.Background(), env, "reg.test", "a")
	wantAuthError(t, err)
}

func TestUnreadableFileIsError(t *testing.T) {
	env, _ := newEnv(t)
	dir := t.TempDir()
	// A directory where the file should be: reading it fails, even as root.
	if err := os.Mkdir(filepath.Join(dir, "config.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	env["DOCKER_CONFIG"] = dir
	_, err := Lookup(context.Background(), env, "reg.test", "a")
	wantAuthError(t, err)
}

func TestBadAuthField(t *testing.T) {
	for label, value := range map[string]string{
		"not base64": "!!!not-base64!!!",
		"no colon":   base64.StdEncoding.EncodeToString([]byte("justonesecretword")),
	} {
		t.Run(label, func(t *testing.T) {
			env, _ := newEnv(t)
			dockerConfig(t, env, auths(map[string]any{"reg.test": map[string]string{"auth": value}}))
			_, err := Lookup(context.Background(), env, "reg.test", "a")
			wantAuthError(t, err)
			if strings.Contains(err.Error(), "justonesecretword") || strings.Contains(err.Error(), value) {
				t.Errorf("message %q quotes the credential", err)
			}
		})
	}
}

func TestEntryWithoutCredentialIsSkipped(t *testing.T) {
	env, _ := newEnv(t)
	dockerConfig(t, env, auths(map[string]any{"reg.test": map[string]string{}}))
	authFile := filepath.Join(t.TempDir(), "auth.json")
	testutil.WriteJSON(t, authFile, auths(map[string]any{"reg.test": map[string]string{"auth": testutil.BasicB64("later", "pw")}}))
	env["REGISTRY_AUTH_FILE"] = authFile
	if c := lookup(t, env, "reg.test", "a"); c.Username != "later" {
		t.Fatalf("got %+v: an empty entry should pass the turn on", c)
	}
}

func TestCredentialMethods(t *testing.T) {
	var anon Credential
	if !anon.Anonymous() || anon.Authenticator() != authn.Anonymous || len(anon.Secrets()) != 0 {
		t.Errorf("zero Credential: anonymous=%v secrets=%q", anon.Anonymous(), anon.Secrets())
	}
	a := Credential{Username: "u", Password: "p1"}
	b := Credential{Username: "u", Password: "p2"}
	if a.Fingerprint() == b.Fingerprint() {
		t.Error("different passwords share a fingerprint")
	}
	if a.Fingerprint() != (Credential{Username: "u", Password: "p1", Source: "elsewhere"}).Fingerprint() {
		t.Error("fingerprint depends on Source")
	}
	// Field boundaries matter: "ab"+"" differs from "a"+"b".
	if (Credential{Username: "ab"}).Fingerprint() == (Credential{Username: "a", Password: "b"}).Fingerprint() {
		t.Error("fingerprint ignores field boundaries")
	}
	if strings.Contains(a.Fingerprint(), "p1") {
		t.Error("fingerprint holds the password")
	}
	cfg, err := authn.Authorization(context.Background(), a.Authenticator())
	if err != nil || cfg.Username != "u" || cfg.Password != "p1" {
		t.Errorf("Authenticator: %+v, %v", cfg, err)
	}
	all := Credential{Username: "u", Password: "pw", IdentityToken: "it", RegistryToken: "rt"}
	if got := strings.Join(all.Secrets(), ","); got != "pw,it,rt" {
		t.Errorf("Secrets() = %q", got)
	}
}

func TestErrorUnwrap(t *testing.T) {
	inner := errors.New("boom")
	e := &Error{Msg: "context", Err: inner}
	if e.Error() != "context: boom" || !errors.Is(e, inner) {
		t.Errorf("Error() = %q, Is = %v", e.Error(), errors.Is(e, inner))
	}
}

func TestLookPath(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	testutil.WriteFile(t, filepath.Join(a, "prog"), []byte("x"), 0o644) // not executable
	if err := os.Mkdir(filepath.Join(a, "dirprog"), 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, filepath.Join(b, "prog"), []byte("x"), 0o755)
	testutil.WriteFile(t, filepath.Join(b, "dirprog"), []byte("x"), 0o755)
	path := a + string(os.PathListSeparator) + b
	if got, err := lookPath("prog", path); err != nil || got != filepath.Join(b, "prog") {
		t.Errorf("lookPath(prog) = %q, %v", got, err)
	}
	if got, err := lookPath("dirprog", path); err != nil || got != filepath.Join(b, "dirprog") {
		t.Errorf("lookPath(dirprog) = %q, %v: a directory is not a program", got, err)
	}
	if _, err := lookPath("prog", ""); err == nil {
		t.Error("lookPath found a program on an empty PATH outside the working directory")
	}
}

func TestFirstLineMasksSecretLikeWords(t *testing.T) {
	cases := []struct {
		stdout, stderr string
		want           string
		absent         []string
	}{
		{"", "", "no diagnostic output", nil},
		{"from stdout", "", "from stdout", nil},
		{"from stdout", "from stderr\nsecond line", "from stderr", []string{"second line"}},
		{"", "bad token Xy7pQr2sTu9vWx4yZa1b!", "bad token [REDACTED]!", []string{"Xy7pQr2sTu9vWx4yZa1b"}},
		{"", `secret="Xy7pQr2sTu9vWx4yZa1b"`, `secret="[REDACTED]"`, nil},
		// Plain words, short values and letter-only words stay readable.
		{"", "keyring is locked for user alice", "keyring is locked for user alice", nil},
		{"", "pin 1234 rejected", "pin 1234 rejected", nil},
		// A secret straddling the 200-byte cut is masked whole, not cut.
		{"", strings.Repeat("a ", 95) + "Xy7pQr2sTu9vWx4yZa1bXy7pQr2sTu9vWx4yZa1b", "", []string{"Xy7pQr2s"}},
	}
	for _, tc := range cases {
		got := firstLine(tc.stdout, tc.stderr)
		if tc.want != "" && got != tc.want {
			t.Errorf("firstLine(%q, %q) = %q, want %q", tc.stdout, tc.stderr, got, tc.want)
		}
		for _, a := range tc.absent {
			if strings.Contains(got, a) {
				t.Errorf("firstLine(%q, %q) = %q still contains %q", tc.stdout, tc.stderr, got, a)
			}
		}
	}
}
