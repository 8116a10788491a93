package mirrors

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/oci-client/liboci/netconf"
)

// hostFields are the settings of one host in hosts.toml (and of the
// server, at the top level), as containerd documents them.
type hostFields struct {
	Capabilities []string       `toml:"capabilities"`
	CA           any            `toml:"ca"`
	Client       any            `toml:"client"`
	SkipVerify   *bool          `toml:"skip_verify"`
	Header       map[string]any `toml:"header"`
	OverridePath bool           `toml:"override_path"`
	DialTimeout  string         `toml:"dial_timeout"`
}

type hostsFile struct {
	hostFields
	Server string                `toml:"server"`
	Host   map[string]hostFields `toml:"host"`
}

// hostDir finds registry's directory under the certs.d roots the way
// containerd does: in each root in turn "host_port_", "host:port" (or
// "host"), then "_default"; the first that exists wins. withDefault false
// leaves "_default" out (a mirror's own TLS files).
func hostDir(roots []string, registry string, withDefault bool) (string, error) {
	for _, root := range roots {
		if root == "" {
			continue
		}
		var names []string
		if i := strings.LastIndex(registry, ":"); i > 0 && !strings.HasSuffix(registry, "]") {
			names = append(names, registry[:i]+"_"+registry[i+1:]+"_")
		}
		names = append(names, registry)
		if withDefault {
			names = append(names, "_default")
		}
		for _, n := range names {
			p := filepath.Join(root, n)
			fi, err := os.Stat(p)
			if err == nil && fi.IsDir() {
				return p, nil
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
				return "", fmt.Errorf("certs.d: %w", err)
			}
		}
	}
	return "", nil
}

// readHostsFile parses dir/hosts.toml; ok false when there is none.
func readHostsFile(dir string) (*hostsFile, []string, bool, error) {
	p := filepath.Join(dir, "hosts.toml")
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(data) == 0) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	var f hostsFile
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%s: %w", p, err)
	}
	// The hosts in the order the file lists them: a map has none.
	var order []string
	seen := map[string]bool{}
	for _, k := range md.Keys() {
		if len(k) >= 2 && k[0] == "host" && !seen[k[1]] {
			seen[k[1]] = true
			order = append(order, k[1])
		}
	}
	return &f, order, true, nil
}

// hostsToml reads the mirrors of registry from the first certs.d
// directory with a hosts.toml for it; found is false where there is none.
// The hosts come in the file's order; a server other than the registry
// itself comes after them.
func hostsToml(roots []string, reg string) ([]Host, string, bool, error) {
	dir, err := hostDir(roots, reg, true)
	if err != nil || dir == "" {
		return nil, "", false, err
	}
	f, order, ok, err := readHostsFile(dir)
	if err != nil || !ok {
		return nil, "", false, err
	}
	source := filepath.Join(dir, "hosts.toml")
	hosts := []Host{}
	for _, name := range order {
		h, err := hostFrom(name, dir, f.Host[name])
		if err != nil {
			return nil, "", false, fmt.Errorf("%s: host %q: %w", source, name, err)
		}
		h.Source = source
		hosts = append(hosts, h)
	}
	if f.Server != "" {
		h, err := hostFrom(f.Server, dir, f.hostFields)
		if err != nil {
			return nil, "", false, fmt.Errorf("%s: server %q: %w", source, f.Server, err)
		}
		if Name(h.Host) != reg {
			h.Source = source
			hosts = append(hosts, h)
		}
	}
	return hosts, source, true, nil
}

// hostFrom is one host of hosts.toml, paths relative to dir.
func hostFrom(server, dir string, c hostFields) (Host, error) {
	h, err := parseServer(server, c.OverridePath)
	if err != nil {
		return Host{}, err
	}
	if len(c.Capabilities) == 0 {
		h.Pull, h.Resolve = true, true
	}
	for _, capability := range c.Capabilities {
		switch strings.ToLower(capability) {
		case "pull":
			h.Pull = true
		case "resolve":
			h.Resolve = true
		case "push":
		default:
			return Host{}, fmt.Errorf("unknown capability %q", capability)
		}
	}
	if h.TLS, err = tlsFrom(dir, c); err != nil {
		return Host{}, err
	}
	if len(c.Header) > 0 {
		h.Header = http.Header{}
		for k, v := range c.Header {
			vals, err := strings1(v)
			if err != nil {
				return Host{}, fmt.Errorf("header %q: %w", k, err)
			}
			for _, s := range vals {
				h.Header.Add(k, s)
			}
		}
	}
	return h, nil
}

// tlsFrom reads ca, client and skip_verify; relative paths are in dir.
func tlsFrom(dir string, c hostFields) (netconf.HostTLS, error) {
	var t netconf.HostTLS
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if c.CA != nil {
		cas, err := strings1(c.CA)
		if err != nil {
			return t, fmt.Errorf("ca: %w", err)
		}
		for _, p := range cas {
			t.CAFiles = append(t.CAFiles, abs(p))
		}
	}
	switch v := c.Client.(type) {
	case nil:
	case string:
		t.Clients = append(t.Clients, [2]string{abs(v), ""})
	case []any:
		for _, e := range v {
			switch p := e.(type) {
			case string:
				t.Clients = append(t.Clients, [2]string{abs(p), ""})
			case []any:
				pair, err := strings1(p)
				if err != nil || len(pair) != 2 {
					return t, fmt.Errorf("client: want [cert, key], got %v", p)
				}
				t.Clients = append(t.Clients, [2]string{abs(pair[0]), abs(pair[1])})
			default:
				return t, fmt.Errorf("client: want a file or [cert, key], got %T", e)
			}
		}
	default:
		return t, fmt.Errorf("client: want a file, files or [cert, key] pairs, got %T", v)
	}
	if c.SkipVerify != nil {
		t.SkipVerify = *c.SkipVerify
	}
	return t, nil
}

// strings1 is a string or a list of strings as a list.
func strings1(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want strings, got %T", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string or strings, got %T", v)
}

// certFiles reads docker's layout: *.crt are CAs, *.cert client
// certificates with their *.key beside them.
func certFiles(dir string) (netconf.HostTLS, error) {
	var t netconf.HostTLS
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return t, nil
		}
		return t, err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".crt"):
			t.CAFiles = append(t.CAFiles, filepath.Join(dir, name))
		case strings.HasSuffix(name, ".cert"):
			key := filepath.Join(dir, strings.TrimSuffix(name, ".cert")+".key")
			if _, err := os.Stat(key); err != nil {
				key = ""
			}
			t.Clients = append(t.Clients, [2]string{filepath.Join(dir, name), key})
		}
	}
	return t, nil
}

// dirTLS is what a host directory says about its own host's TLS: the top
// level of its hosts.toml (when its server is that host, or unset), else
// its certificate files.
func dirTLS(dir, host string) (netconf.HostTLS, error) {
	f, _, ok, err := readHostsFile(dir)
	if err != nil {
		return netconf.HostTLS{}, err
	}
	if !ok {
		return certFiles(dir)
	}
	if f.Server != "" {
		if h, err := parseServer(f.Server, f.OverridePath); err != nil || Name(h.Host) != Name(host) {
			return netconf.HostTLS{}, nil
		}
	}
	return tlsFrom(dir, f.hostFields)
}

// originTLS is the registry's own TLS from its certs.d directory.
func originTLS(roots []string, reg string) (netconf.HostTLS, error) {
	dir, err := hostDir(roots, reg, true)
	if err != nil || dir == "" {
		return netconf.HostTLS{}, err
	}
	return dirTLS(dir, reg)
}

// hostTLS is a mirror's TLS from a certs.d directory of its own.
func hostTLS(roots []string, host string) (netconf.HostTLS, error) {
	dir, err := hostDir(roots, strings.ToLower(host), false)
	if err != nil || dir == "" {
		return netconf.HostTLS{}, err
	}
	return dirTLS(dir, host)
}
