package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/oci-client/liboci/internal/envmap"
)

// configFile is the subset of Docker's config.json (and of the containers
// auth.json, which uses the same "auths" layout) that matters for pulling.
type configFile struct {
	path        string
	Auths       map[string]authEntry `json:"auths"`
	CredsStore  string               `json:"credsStore"`
	CredHelpers map[string]string    `json:"credHelpers"`
}

type authEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

func (a authEntry) empty() bool {
	return a.Auth == "" && a.Username == "" && a.Password == "" && a.IdentityToken == "" && a.RegistryToken == ""
}

// credential decodes the entry; "auth" is base64("user:password") and wins
// over the separate fields, as in docker.
func (a authEntry) credential() (Credential, error) {
	c := Credential{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	if a.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.Auth))
		if err != nil {
			// The decoder's message quotes an offset, never the value.
			return Credential{}, fmt.Errorf("decoding \"auth\" field: %w", err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return Credential{}, errors.New("decoding \"auth\" field: not of the form user:password")
		}
		c.Username, c.Password = user, pass
	}
	return c, nil
}

// configLocations lists the credential files in the order they are searched:
// docker's first (what `docker login` writes), then the containers tools'.
func configLocations(env envmap.Env) []string {
	var paths []string
	if dir := env.Get("DOCKER_CONFIG"); dir != "" {
		paths = append(paths, filepath.Join(dir, "config.json"))
	} else if home := env.Get("HOME"); home != "" {
		paths = append(paths, filepath.Join(home, ".docker", "config.json"))
	}
	if f := env.Get("REGISTRY_AUTH_FILE"); f != "" {
		paths = append(paths, f)
	}
	if dir := env.Get("XDG_RUNTIME_DIR"); dir != "" {
		paths = append(paths, filepath.Join(dir, "containers", "auth.json"))
	}
	if home := env.Get("HOME"); home != "" {
		paths = append(paths, filepath.Join(home, ".config", "containers", "auth.json"))
	}
	return paths
}

// loadConfig reads one credential file; a missing file is (nil, nil).
func loadConfig(path string) (*configFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("reading credentials file %s", path), Err: err}
	}
	cf := &configFile{path: path}
	if len(strings.TrimSpace(string(data))) == 0 {
		return cf, nil
	}
	if err := json.Unmarshal(data, cf); err != nil {
		// json errors name a byte offset or a type, never the content.
		return nil, &Error{Msg: fmt.Sprintf("parsing credentials file %s", path), Err: err}
	}
	return cf, nil
}

// normalizeKey turns an "auths" key into host[/path] form: the scheme goes,
// docker's "/v1/" and "/v2/" suffixes go, and Docker Hub's aliases fold to
// index.docker.io.
func normalizeKey(key string) string {
	k := strings.TrimSpace(key)
	k = strings.TrimPrefix(k, "https://")
	k = strings.TrimPrefix(k, "http://")
	k = strings.TrimSuffix(k, "/")
	host, path, _ := strings.Cut(k, "/")
	if path == "v1" || path == "v2" || strings.HasPrefix(path, "v1/") || strings.HasPrefix(path, "v2/") {
		path = ""
	}
	host = canonicalHost(host)
	if path == "" {
		return host
	}
	return host + "/" + path
}

func canonicalHost(host string) string {
	switch strings.ToLower(host) {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "index.docker.io"
	}
	return strings.ToLower(host)
}

// matchAuth finds the most specific "auths" entry for host/repo: a
// containers-style "host/namespace" key beats a bare host key.
func (cf *configFile) matchAuth(host, repo string) (authEntry, bool) {
	host = canonicalHost(host)
	full := host + "/" + repo
	best, bestLen, found := authEntry{}, -1, false
	for key, entry := range cf.Auths {
		k := normalizeKey(key)
		if k != host && k != full && !strings.HasPrefix(full, k+"/") {
			continue
		}
		if len(k) > bestLen {
			best, bestLen, found = entry, len(k), true
		}
	}
	return best, found
}

// helperFor names the credential helper docker would ask for host, if any.
func (cf *configFile) helperFor(host string) string {
	for key, helper := range cf.CredHelpers {
		if normalizeKey(key) == canonicalHost(host) {
			return helper
		}
	}
	return cf.CredsStore
}
