package mirrors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/oci-client/liboci/internal/envmap"
)

// registriesFile is the part of containers-registries.conf(5), version 2,
// that says where content may come from.
type registriesFile struct {
	Registry []struct {
		Prefix             string `toml:"prefix"`
		Location           string `toml:"location"`
		Insecure           bool   `toml:"insecure"`
		MirrorByDigestOnly bool   `toml:"mirror-by-digest-only"`
		Mirror             []struct {
			Location       string `toml:"location"`
			Insecure       bool   `toml:"insecure"`
			PullFromMirror string `toml:"pull-from-mirror"`
		} `toml:"mirror"`
	} `toml:"registry"`
}

// registriesConfPath is the file containers would read: the variable,
// else the user's own file, else the system's.
func registriesConfPath(env envmap.Env) string {
	if p := env.Get("CONTAINERS_REGISTRIES_CONF"); p != "" {
		return p
	}
	config := env.Get("XDG_CONFIG_HOME")
	if config == "" && env.Get("HOME") != "" {
		config = filepath.Join(env.Get("HOME"), ".config")
	}
	if config != "" {
		p := filepath.Join(config, "containers", "registries.conf")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return SystemRegistriesConf
}

// registriesConf finds the [[registry]] whose prefix matches reg/repo
// best (the longest) and returns its mirrors; found is false when none
// matches.
func registriesConf(env envmap.Env, reg, repo string) ([]Host, string, bool, error) {
	p := registriesConfPath(env)
	if p == "" {
		return nil, "", false, nil
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, err
	}
	var f registriesFile
	if _, err := toml.Decode(string(data), &f); err != nil {
		return nil, "", false, fmt.Errorf("%s: %w", p, err)
	}
	ref := reg + "/" + repo
	best, bestLen := -1, -1
	for i, r := range f.Registry {
		prefix := r.Prefix
		if prefix == "" {
			prefix = r.Location
		}
		if n, ok := prefixMatch(strings.ToLower(prefix), ref, reg); ok && n > bestLen {
			best, bestLen = i, n
		}
	}
	if best < 0 {
		return nil, "", false, nil
	}
	r := f.Registry[best]
	prefix := strings.ToLower(r.Prefix)
	if prefix == "" {
		prefix = strings.ToLower(r.Location)
	}
	strip := ""
	if !strings.HasPrefix(prefix, "*.") {
		if _, rest, ok := strings.Cut(prefix, "/"); ok {
			strip = rest
		}
	}
	source := fmt.Sprintf("%s [[registry]] prefix %q", p, prefix)
	hosts := []Host{}
	add := func(location string, insecure bool, pullFrom string) error {
		loc := strings.TrimSuffix(strings.TrimSpace(location), "/")
		host, addRepo, _ := strings.Cut(loc, "/")
		if host == "" || strings.Contains(loc, "://") {
			return fmt.Errorf("%s: location %q is not host[:port][/path]", source, location)
		}
		h := Host{Scheme: "https", Host: host, Root: "/v2", StripRepo: strip, AddRepo: addRepo, Source: source}
		if insecure {
			h.TLS.SkipVerify = true
			h.Insecure = true
		}
		switch strings.ToLower(pullFrom) {
		case "", "all":
			h.Pull, h.Resolve = true, true
		case "digest-only":
			h.Pull = true
		case "tag-only":
			h.Pull, h.Resolve, h.TagOnly = true, true, true
		default:
			return fmt.Errorf("%s: pull-from-mirror %q is not all, digest-only or tag-only", source, pullFrom)
		}
		if r.MirrorByDigestOnly {
			h.Resolve = false
		}
		hosts = append(hosts, h)
		return nil
	}
	for _, m := range r.Mirror {
		if err := add(m.Location, m.Insecure, m.PullFromMirror); err != nil {
			return nil, "", false, err
		}
	}
	// A location other than the prefix moves the registry: it is tried
	// after the mirrors (and before the origin, which this client always
	// keeps as the last resort).
	if loc := strings.ToLower(strings.TrimSuffix(r.Location, "/")); loc != "" && loc != prefix && !strings.HasPrefix(prefix, "*.") {
		if err := add(r.Location, r.Insecure, "all"); err != nil {
			return nil, "", false, err
		}
	}
	return hosts, source, true, nil
}

// prefixMatch reports whether prefix covers ref ("host/repo", registry
// reg), and how specific it is: a prefix is the whole ref or a part of it
// that ends at a "/"; "*.example.com" covers hosts under example.com.
func prefixMatch(prefix, ref, reg string) (int, bool) {
	if strings.HasPrefix(prefix, "*.") {
		return len(prefix), strings.HasSuffix(reg, prefix[1:])
	}
	if prefix == ref || (strings.HasPrefix(ref, prefix) && ref[len(prefix)] == '/') {
		return len(prefix), true
	}
	return 0, false
}
