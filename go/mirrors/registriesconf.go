package mirrors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/oci-client/liboci/internal/envmap"
)

// registriesFile is the part of containers-registries.conf(5), version 2,
// that says where content may come from.
type registriesFile struct {
	Registry []registryEntry `toml:"registry"`
}

type registryEntry struct {
	Prefix             string `toml:"prefix"`
	Location           string `toml:"location"`
	Insecure           bool   `toml:"insecure"`
	Blocked            bool   `toml:"blocked"`
	MirrorByDigestOnly bool   `toml:"mirror-by-digest-only"`
	Mirror             []struct {
		Location       string `toml:"location"`
		Insecure       bool   `toml:"insecure"`
		PullFromMirror string `toml:"pull-from-mirror"`
	} `toml:"mirror"`

	file string // where it was read, for messages
}

// key is what names the entry: its prefix, else its location.
func (r registryEntry) key() string {
	p := r.Prefix
	if p == "" {
		p = r.Location
	}
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(p)), "/")
}

// registriesConfFiles are the files containers would read, in order: the
// main file (the variable, else the user's own, else the system's), then
// the drop-ins of registries.conf.d, each directory in name order (the
// system's and the user's; only the user's next to the user's own file).
func registriesConfFiles(env envmap.Env) []string {
	config := env.Get("XDG_CONFIG_HOME")
	if config == "" && env.Get("HOME") != "" {
		config = filepath.Join(env.Get("HOME"), ".config")
	}
	userFile, userDir := "", ""
	if config != "" {
		userFile = filepath.Join(config, "containers", "registries.conf")
		userDir = userFile + ".d"
	}
	var files, dirs []string
	switch {
	case env.Get("CONTAINERS_REGISTRIES_CONF") != "":
		files, dirs = []string{env.Get("CONTAINERS_REGISTRIES_CONF")}, []string{SystemRegistriesConf + ".d", userDir}
	case userFile != "" && exists(userFile):
		files, dirs = []string{userFile}, []string{userDir}
	default:
		files, dirs = []string{SystemRegistriesConf}, []string{SystemRegistriesConf + ".d", userDir}
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		entries, err := os.ReadDir(d) // sorted by name
		if err != nil {
			continue // most machines have none
		}
		for _, e := range entries {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".conf") {
				files = append(files, filepath.Join(d, e.Name()))
			}
		}
	}
	return files
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// loadRegistries reads the [[registry]] tables of every file: within a
// file the first of a prefix counts, and a later file's replaces an
// earlier one's whole, as containers merges its drop-ins.
func loadRegistries(env envmap.Env) ([]registryEntry, error) {
	var merged []registryEntry
	for _, p := range registriesConfFiles(env) {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var f registriesFile
		if _, err := toml.Decode(string(data), &f); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		seen := map[string]bool{}
		for _, r := range f.Registry {
			k := r.key()
			if seen[k] {
				continue
			}
			seen[k] = true
			r.file = p
			merged = slices.DeleteFunc(merged, func(o registryEntry) bool { return o.key() == k })
			merged = append(merged, r)
		}
	}
	return merged, nil
}

// confMatch is what registries.conf says of one registry and repository.
type confMatch struct {
	hosts   []Host
	source  string
	found   bool
	blocked bool
}

// registriesConf finds the [[registry]] whose prefix matches reg/repo
// best (the longest): its mirrors, and whether it is blocked.
func registriesConf(env envmap.Env, reg, repo string) (confMatch, error) {
	entries, err := loadRegistries(env)
	if err != nil {
		return confMatch{}, err
	}
	ref := reg + "/" + repo
	best, bestLen := -1, -1
	for i, r := range entries {
		if n, ok := prefixMatch(r.key(), ref, reg); ok && n > bestLen {
			best, bestLen = i, n
		}
	}
	if best < 0 {
		return confMatch{}, nil
	}
	r := entries[best]
	prefix := r.key()
	strip := ""
	if !strings.HasPrefix(prefix, "*.") {
		if _, rest, ok := strings.Cut(prefix, "/"); ok {
			strip = rest
		}
	}
	source := fmt.Sprintf("%s [[registry]] prefix %q", r.file, prefix)
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
			return confMatch{}, err
		}
	}
	// A location other than the prefix moves the registry: it is tried
	// after the mirrors (and before the origin, which this client always
	// keeps as the last resort).
	if loc := strings.ToLower(strings.TrimSuffix(r.Location, "/")); loc != "" && loc != prefix && !strings.HasPrefix(prefix, "*.") {
		if err := add(r.Location, r.Insecure, "all"); err != nil {
			return confMatch{}, err
		}
	}
	return confMatch{hosts: hosts, source: source, found: true, blocked: r.Blocked}, nil
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
