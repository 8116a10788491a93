package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/oci-client/liboci/internal/envmap"
)

// helperTimeout bounds a credential helper that never answers (a locked
// keyring waiting for a GUI prompt, say): a pull must not hang on it.
const helperTimeout = 30 * time.Second

// errHelperNotFound is the helper protocol's "no credentials for this server".
var errHelperNotFound = errors.New("credentials not found")

// helperServerURL is the key docker uses when it stores credentials in a helper.
func helperServerURL(host string) string {
	if canonicalHost(host) == "index.docker.io" {
		return "https://index.docker.io/v1/"
	}
	return host
}

// runHelper runs `docker-credential-NAME get` the way docker does: the server
// URL on stdin, a JSON {ServerURL, Username, Secret} on stdout.
func runHelper(ctx context.Context, env envmap.Env, name, host string) (Credential, error) {
	prog := "docker-credential-" + name
	bin, err := lookPath(prog, env.Get("PATH"))
	if err != nil {
		return Credential{}, &Error{Msg: fmt.Sprintf("credential helper %s (configured for %s)", prog, host), Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "get")
	cmd.Env = env.List()
	cmd.Stdin = strings.NewReader(helperServerURL(host))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Once the context ends and the helper is killed, stop waiting for its
	// output: a child it started (a shell script's sleep, a prompt) may hold
	// stdout open long after, and Wait would block until that child exits.
	cmd.WaitDelay = time.Second
	runErr := cmd.Run()
	if runErr != nil {
		out := strings.TrimSpace(stdout.String())
		if strings.Contains(strings.ToLower(out), "credentials not found") {
			return Credential{}, errHelperNotFound
		}
		if ctx.Err() != nil {
			return Credential{}, &Error{Msg: fmt.Sprintf("credential helper %s timed out or was cancelled", prog), Err: ctx.Err()}
		}
		if strings.Contains(out, `"Secret"`) {
			// It printed a credential and then failed: never echo that.
			out = ""
		}
		return Credential{}, &Error{Msg: fmt.Sprintf("credential helper %s failed: %s", prog, firstLine(out, stderr.String())), Err: runErr}
	}
	var resp struct {
		ServerURL string
		Username  string
		Secret    string
	}
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		// Never echo stdout here: it is the very thing that holds the secret.
		return Credential{}, &Error{Msg: fmt.Sprintf("credential helper %s printed malformed output", prog), Err: errors.New("not a JSON credential")}
	}
	if resp.Username == "<token>" {
		return Credential{IdentityToken: resp.Secret}, nil
	}
	return Credential{Username: resp.Username, Password: resp.Secret}, nil
}

// firstLine keeps a helper's diagnostic short; the caller's redactor still
// scrubs it, since a broken helper may print anything.
func firstLine(stdout, stderr string) string {
	s := strings.TrimSpace(stderr)
	if s == "" {
		s = strings.TrimSpace(stdout)
	}
	if s == "" {
		return "no diagnostic output"
	}
	s, _, _ = strings.Cut(s, "\n")
	// Mask before cutting: a cut secret's head would no longer look like one.
	s = maskSecretLike(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// maskSecretLike hides words that look like credentials (long mixes of
// letters and digits that are not hex digests): a failing helper may print
// the very secret it could not hand over.
func maskSecretLike(s string) string {
	// Judge runs of token characters, not whitespace-separated words, so a
	// secret in quotes, brackets or JSON is caught too.
	return secretLikeRun.ReplaceAllStringFunc(s, func(w string) string {
		if looksSecret(w) {
			return "[REDACTED]"
		}
		return w
	})
}

var secretLikeRun = regexp.MustCompile(`[A-Za-z0-9+/=_.:-]{16,}`)

func looksSecret(w string) bool {
	if len(w) < 16 {
		return false
	}
	var letters, digits, hexOnly = 0, 0, true
	for _, r := range w {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r >= 'a' && r <= 'f':
			letters++
		case r >= 'A' && r <= 'Z' || r >= 'g' && r <= 'z':
			letters++
			hexOnly = false
		case strings.ContainsRune("+/=_-.:", r):
		default:
			return false
		}
	}
	return letters > 0 && digits > 0 && !hexOnly
}

// lookPath searches the caller's PATH, not the one frozen at library load.
func lookPath(prog, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, prog)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH", prog)
}
