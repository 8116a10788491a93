// Package auth finds the credentials a Docker or Podman user already has:
// config.json "auths" entries, credsStore and credHelpers programs, and the
// containers auth.json files.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/oci-client/liboci/internal/envmap"
)

// Credential is what a lookup found. The zero value means anonymous.
type Credential struct {
	Username      string
	Password      string
	IdentityToken string
	RegistryToken string
	// Source names where it came from (a file path or a helper), for messages.
	Source string
}

// Anonymous reports whether no credential was found.
func (c Credential) Anonymous() bool {
	return c.Username == "" && c.Password == "" && c.IdentityToken == "" && c.RegistryToken == ""
}

// Authenticator adapts the credential to go-containerregistry.
func (c Credential) Authenticator() authn.Authenticator {
	if c.Anonymous() {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      c.Username,
		Password:      c.Password,
		IdentityToken: c.IdentityToken,
		RegistryToken: c.RegistryToken,
	})
}

// Secrets lists the values that must never appear in any message.
func (c Credential) Secrets() []string {
	var out []string
	for _, s := range []string{c.Password, c.IdentityToken, c.RegistryToken} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Fingerprint identifies the credential without holding it, so cached
// connections are reused only while the login stays the same.
func (c Credential) Fingerprint() string {
	h := sha256.New()
	for _, s := range []string{c.Username, c.Password, c.IdentityToken, c.RegistryToken} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Error is a failure to obtain credentials (unreadable config, failing helper).
type Error struct {
	Msg string
	Err error
}

func (e *Error) Error() string { return e.Msg + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Lookup returns the credential for host/repo from the files named by env.
// The first file that has an entry (or a helper) for the registry decides;
// a helper's "not found" falls through to the entry's inline fields and then
// to the next file. No file, no entry: anonymous.
func Lookup(ctx context.Context, env envmap.Env, host, repo string) (Credential, error) {
	for _, path := range configLocations(env) {
		cf, err := loadConfig(path)
		if err != nil {
			return Credential{}, err
		}
		if cf == nil {
			continue
		}
		if helper := cf.helperFor(host); helper != "" {
			c, err := runHelper(ctx, env, helper, host)
			if err == nil {
				c.Source = "docker-credential-" + helper
				return c, nil
			}
			if !errors.Is(err, errHelperNotFound) {
				return Credential{}, err
			}
		}
		entry, ok := cf.matchAuth(host, repo)
		if !ok || entry.empty() {
			continue
		}
		c, err := entry.credential()
		if err != nil {
			return Credential{}, &Error{Msg: fmt.Sprintf("credentials for %s in %s", host, path), Err: err}
		}
		c.Source = path
		return c, nil
	}
	return Credential{}, nil
}
