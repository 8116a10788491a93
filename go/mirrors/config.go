// Package mirrors finds the mirrors a registry has in the configuration a
// machine already holds, and sends pulls through them.
//
// Three sources are read afresh on every call, so a changed file counts
// from the next pull on without a restart:
//
//   - the mirrors= option, else OCI_CLIENT_MIRRORS: "REGISTRY=URL[,URL…]",
//     several separated by ";" or new lines ("*" stands for every registry);
//   - containerd's hosts.toml in a certs.d directory: certs_dir=, else
//     OCI_CLIENT_CERTS_DIR (":"-separated), then /etc/containerd/certs.d,
//     /etc/docker/certs.d and /etc/containers/certs.d, each with a
//     directory per registry ("host_port_", "host:port", "host") or
//     "_default";
//   - containers' registries.conf (v2): $CONTAINERS_REGISTRIES_CONF, else
//     $XDG_CONFIG_HOME/containers/registries.conf or
//     ~/.config/containers/registries.conf, else
//     /etc/containers/registries.conf.
//
// The first source that says anything about a registry decides its
// mirrors; the others are not merged in. TLS settings for a host (ca,
// client certificates, skip_verify) come from its certs.d directory
// whatever source named the host.
//
// Package mirrors decides where requests go and that what a mirror sends
// is what the origin named; the transfer engine checks blob digests, and
// reports a mismatch with Distrust, so that the blob comes again from the
// next host.
package mirrors

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/oci-client/liboci/internal/envmap"
	"github.com/oci-client/liboci/netconf"
)

// Settings are a client's mirror settings.
type Settings struct {
	// Env is the call's environment (OCI_CLIENT_MIRRORS,
	// OCI_CLIENT_CERTS_DIR, CONTAINERS_REGISTRIES_CONF, HOME, credentials).
	Env envmap.Env
	// Mirrors maps a registry ("docker.io", "host:port", "*") to mirror
	// URLs tried in order; an empty list means none for that registry.
	// Nil: OCI_CLIENT_MIRRORS.
	Mirrors map[string][]string
	// CertsDirs are searched before the system's certs.d directories.
	// Nil: OCI_CLIENT_CERTS_DIR.
	CertsDirs []string
	// Net is how hosts are reached (roots, proxies).
	Net netconf.Config
}

// Places the package reads; variables so that tests can point elsewhere.
var (
	SystemCertsDirs      = []string{"/etc/containerd/certs.d", "/etc/docker/certs.d", "/etc/containers/certs.d"}
	SystemRegistriesConf = "/etc/containers/registries.conf" // and its .d directory of drop-ins
)

// Host is one place a registry's content may come from.
type Host struct {
	Scheme string // "https" or "http"
	Host   string // host[:port]
	// Root is the API root: "/v2", or the path itself where override_path
	// is set.
	Root string
	// StripRepo and AddRepo map the repository (registries.conf: the
	// prefix's path gives way to the mirror location's).
	StripRepo, AddRepo string
	// Pull: blobs and manifests by digest; Resolve: manifests by tag.
	Pull, Resolve bool
	// TagOnly: only for pulls of a tag (registries.conf pull-from-mirror
	// = "tag-only"), not for digest-pinned ones.
	TagOnly bool
	// Insecure: the host may answer plain HTTP where https was tried
	// (registries.conf insecure = true); its certificate is not verified.
	Insecure bool
	TLS      netconf.HostTLS
	Header   http.Header
	// Source names the configuration the host comes from, for messages.
	Source string
}

// Key names the host in logs and in a call's records.
func (h Host) Key() string {
	k := h.Scheme + "://" + h.Host + h.Root
	if h.AddRepo != "" || h.StripRepo != "" {
		k += " (repository " + h.StripRepo + " as " + h.AddRepo + ")"
	}
	return k
}

// Repo maps the origin's repository to the host's.
func (h Host) Repo(repo string) string {
	rest := repo
	if h.StripRepo != "" {
		rest = strings.TrimPrefix(strings.TrimPrefix(repo, h.StripRepo), "/")
	}
	switch {
	case h.AddRepo == "":
		return rest
	case rest == "":
		return h.AddRepo
	}
	return h.AddRepo + "/" + rest
}

// URL is where the host serves p ("manifests/…", "blobs/…") of repo, with
// the origin named in ns= as containerd sends it.
func (h Host) URL(repo, p, ns string) *url.URL {
	u := &url.URL{Scheme: h.Scheme, Host: h.Host, Path: path.Join("/", h.Root, h.Repo(repo), p)}
	if ns != "" {
		u.RawQuery = url.Values{"ns": {ns}}.Encode()
	}
	return u
}

// Config is what applies to one registry and repository.
type Config struct {
	// Mirrors are tried in order, before the origin.
	Mirrors []Host
	// OriginTLS is the origin's own TLS settings (its certs.d directory).
	OriginTLS netconf.HostTLS
	// Source names where the mirrors came from ("" when none).
	Source string
	// Blocked names the registries.conf entry that forbids pulls from the
	// registry ("" when none does).
	Blocked string
}

// Name is how configuration names registry (a reference's host): Docker
// Hub is "docker.io" wherever go-containerregistry says index.docker.io.
func Name(registry string) string {
	r := strings.ToLower(registry)
	switch r {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return r
}

// Resolve reads the configuration for repository repo of registry.
func Resolve(s Settings, registry, repo string) (Config, error) {
	reg := Name(registry)
	var cfg Config
	dirs := s.certsDirs()
	tlsCfg, err := originTLS(dirs, reg)
	if err != nil {
		return cfg, err
	}
	cfg.OriginTLS = tlsCfg
	// registries.conf is read whatever gives the mirrors: it may block the
	// registry. Unreadable, it matters only where it would give them.
	conf, confErr := registriesConf(s.Env, reg, repo)
	if confErr == nil && conf.blocked {
		cfg.Blocked = conf.source
	}
	hosts, source, found, err := s.simple(reg)
	if err == nil && !found {
		hosts, source, found, err = hostsToml(dirs, reg)
	}
	if err == nil && !found {
		hosts, source, found, err = conf.hosts, conf.source, conf.found, confErr
	}
	if err != nil {
		return cfg, err
	}
	// The registry itself, listed among its hosts (containerd's examples
	// often end with it), is the origin: it keeps its login and comes last.
	kept := hosts[:0]
	for _, h := range hosts {
		if Name(h.Host) != reg || h.AddRepo != "" || h.StripRepo != "" {
			kept = append(kept, h)
		}
	}
	hosts = kept
	for i := range hosts {
		if hosts[i].TLS.Empty() {
			t, err := hostTLS(dirs, hosts[i].Host)
			if err != nil {
				return cfg, err
			}
			hosts[i].TLS = t
		}
	}
	cfg.Mirrors, cfg.Source = hosts, source
	return cfg, nil
}

func (s Settings) certsDirs() []string {
	var dirs []string
	if s.CertsDirs != nil {
		dirs = append(dirs, s.CertsDirs...)
	} else if v := s.Env.Get("OCI_CLIENT_CERTS_DIR"); v != "" {
		dirs = append(dirs, strings.Split(v, ":")...)
	}
	return append(dirs, SystemCertsDirs...)
}

// simple reads the mirrors= option, else OCI_CLIENT_MIRRORS.
func (s Settings) simple(reg string) ([]Host, string, bool, error) {
	m, source := s.Mirrors, "mirrors="
	if m == nil {
		v := s.Env.Get("OCI_CLIENT_MIRRORS")
		if v == "" {
			return nil, "", false, nil
		}
		var err error
		if m, err = ParseList(v); err != nil {
			return nil, "", false, fmt.Errorf("OCI_CLIENT_MIRRORS: %w", err)
		}
		source = "OCI_CLIENT_MIRRORS"
	}
	urls, ok := m[reg]
	if !ok {
		for k, v := range m {
			if Name(k) == reg {
				urls, ok = v, true
				break
			}
		}
	}
	if !ok {
		urls, ok = m["*"]
	}
	if !ok {
		return nil, "", false, nil
	}
	hosts := make([]Host, 0, len(urls))
	for _, raw := range urls {
		h, err := parseServer(raw, false)
		if err != nil {
			return nil, "", false, fmt.Errorf("%s: mirror %q for %s: %w", source, raw, reg, err)
		}
		h.Pull, h.Resolve, h.Source = true, true, source
		hosts = append(hosts, h)
	}
	return hosts, source, true, nil
}

// ParseList parses "REGISTRY=URL[,URL…]" entries separated by ";" or new
// lines.
func ParseList(s string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, entry := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		reg, list, ok := strings.Cut(entry, "=")
		reg = strings.TrimSpace(reg)
		if !ok || reg == "" {
			return nil, fmt.Errorf("entry %q is not REGISTRY=URL[,URL…]", entry)
		}
		urls := []string{}
		for _, u := range strings.Split(list, ",") {
			if u = strings.TrimSpace(u); u != "" {
				urls = append(urls, u)
			}
		}
		out[reg] = append(out[reg], urls...)
	}
	return out, nil
}

// CheckList refuses what a mirrors= map could never mean: an empty
// registry name or a mirror that is no http(s) URL.
func CheckList(m map[string][]string) error {
	for reg, urls := range m {
		if reg == "" {
			return fmt.Errorf("mirrors: an empty registry name")
		}
		for _, u := range urls {
			if _, err := parseServer(u, false); err != nil {
				return fmt.Errorf("mirrors: mirror %q for %s: %w", u, reg, err)
			}
		}
	}
	return nil
}

// parseServer reads a host URL the way containerd reads hosts.toml's:
// without a scheme it is https; the API root is the path plus "/v2",
// unless overridePath says the path is the root.
func parseServer(raw string, overridePath bool) (Host, error) {
	s := strings.TrimSpace(raw)
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		if strings.Contains(s, "://") {
			return Host{}, fmt.Errorf("scheme is not http or https")
		}
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Host{}, err
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Host{}, fmt.Errorf("want scheme://host[:port][/path]")
	}
	h := Host{Scheme: u.Scheme, Host: u.Host}
	p := ""
	if u.Path != "" && u.Path != "/" {
		p = path.Clean(u.Path)
	}
	switch {
	case overridePath:
		h.Root = p
	case strings.HasSuffix(p, "/v2"):
		h.Root = p
	default:
		h.Root = p + "/v2"
	}
	return h, nil
}
