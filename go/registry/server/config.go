package server

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/oci-client/liboci/mirrors"
)

// DefaultAddr is where the registry listens when Config.Addr is empty.
const DefaultAddr = "127.0.0.1:5000"

// Config says where the registry keeps its data and how it serves it.
type Config struct {
	// Root is the storage directory; it is created (0700) if missing.
	Root string
	// Addr is host:port to listen on; port 0 picks a free one. Empty means DefaultAddr.
	Addr string
	// AllowRemote permits a bind address other than loopback.
	AllowRemote bool

	// ProxyURL makes the registry a pull-through cache of that registry.
	ProxyURL      string
	ProxyUsername string
	ProxyPassword string

	// A cache reaches its upstream through the mirrors configured for it,
	// as a pull does (see package mirrors): Mirrors ("docker.io" or
	// "host:port" to URLs; nil: OCI_CLIENT_MIRRORS) and CertsDirs (nil:
	// OCI_CLIENT_CERTS_DIR), then the system's certs.d directories and
	// registries.conf. Env is the environment those and the mirrors'
	// credentials are read from; nil: the process's.
	Mirrors   map[string][]string
	CertsDirs []string
	Env       map[string]string

	// TLSCert and TLSKey (PEM files, both or neither) serve HTTPS.
	TLSCert, TLSKey string

	// LogLevel is error, warn (the default), info or debug; info and debug add an access log.
	LogLevel string
}

// String leaves out the proxy password, so a Config can be logged.
func (c Config) String() string {
	pw := ""
	if c.ProxyPassword != "" {
		pw = "***"
	}
	// Env is left out: it may hold anything.
	return fmt.Sprintf("{Root:%q Addr:%q AllowRemote:%v ProxyURL:%q ProxyUsername:%q ProxyPassword:%q Mirrors:%v CertsDirs:%q TLSCert:%q TLSKey:%q LogLevel:%q}",
		c.Root, c.Addr, c.AllowRemote, c.ProxyURL, c.ProxyUsername, pw, c.Mirrors, c.CertsDirs, c.TLSCert, c.TLSKey, c.LogLevel)
}

var logLevels = map[string]bool{"error": true, "warn": true, "info": true, "debug": true}

// normalized checks c and fills in the defaults.
func (c Config) normalized() (Config, error) {
	if c.Root == "" {
		return c, fmt.Errorf("no storage root given")
	}
	abs, err := filepath.Abs(c.Root)
	if err != nil {
		return c, fmt.Errorf("storage root %q: %w", c.Root, err)
	}
	c.Root = abs
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if err := checkBindAddr(c.Addr, c.AllowRemote); err != nil {
		return c, err
	}
	if c.LogLevel == "" {
		c.LogLevel = "warn"
	}
	c.LogLevel = strings.ToLower(c.LogLevel)
	if c.LogLevel == "warning" {
		c.LogLevel = "warn"
	}
	if !logLevels[c.LogLevel] {
		return c, fmt.Errorf("unknown log level %q (want error, warn, info or debug)", c.LogLevel)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, fmt.Errorf("TLS needs both a certificate and a key")
	}
	if c.ProxyURL != "" {
		if err := checkProxyURL(c.ProxyURL); err != nil {
			return c, err
		}
		if err := mirrors.CheckList(c.Mirrors); err != nil {
			return c, err
		}
	} else if c.ProxyUsername != "" || c.ProxyPassword != "" {
		return c, fmt.Errorf("proxy credentials given without a proxy URL")
	} else if c.Mirrors != nil || c.CertsDirs != nil {
		return c, fmt.Errorf("mirrors given without a proxy URL: only a pull-through cache has an upstream to mirror")
	}
	return c, nil
}

// checkBindAddr refuses anything but loopback unless allowRemote: the registry
// has no authentication, so listening on a network interface would publish
// the whole store to the network.
func checkBindAddr(addr string, allowRemote bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad listen address %q: %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("bad listen address %q: no port", addr)
	}
	if allowRemote || isLoopbackHost(host) {
		return nil
	}
	what := host
	if what == "" {
		what = "all interfaces"
	}
	return fmt.Errorf("refusing to listen on %q (%s is not a loopback address; the registry has no authentication): allow it explicitly with --allow-remote", addr, what)
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkProxyURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// url's error repeats the URL, which may hold credentials.
		return fmt.Errorf("bad proxy URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("bad proxy URL %q: the scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("bad proxy URL %q: no host", u.Redacted())
	}
	// distribution logs the remote URL; credentials in it would end up in logs.
	if u.User != nil {
		return fmt.Errorf("bad proxy URL %q: pass credentials as the proxy username and password, not in the URL", u.Redacted())
	}
	return nil
}

// distributionConfig builds distribution's configuration in code rather than
// through configuration.Parse: Parse applies REGISTRY_* environment overrides,
// and a user's environment set up for another registry (REGISTRY_HTTP_ADDR,
// REGISTRY_STORAGE_…) would silently change this one. The defaults Parse would
// fill in (catalog and tag page limits) are set here instead.
func distributionConfig(c Config, secret string) *configuration.Configuration {
	cfg := &configuration.Configuration{
		Version: configuration.CurrentVersion,
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": c.Root},
			"delete":     configuration.Parameters{"enabled": true},
		},
	}
	cfg.Log.Level = configuration.Loglevel(c.LogLevel)
	cfg.Log.Formatter = "text"
	cfg.Log.AccessLog.Disabled = !accessLogged(c.LogLevel)
	cfg.HTTP.Addr = c.Addr
	cfg.HTTP.Secret = secret
	cfg.HTTP.Headers = map[string][]string{"X-Content-Type-Options": {"nosniff"}}
	cfg.Catalog.MaxEntries = 1000
	cfg.Tags.MaxTags = 1000
	if c.ProxyURL != "" {
		cfg.Proxy = configuration.Proxy{
			RemoteURL: c.ProxyURL,
			Username:  c.ProxyUsername,
			Password:  c.ProxyPassword,
		}
	}
	return cfg
}

func accessLogged(level string) bool { return level == "info" || level == "debug" }
