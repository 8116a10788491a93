package netconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"

	"github.com/oci-client/liboci/internal/lru"
	"golang.org/x/net/http/httpproxy"
)

// HostTLS is the TLS one host's configuration asks for (containerd's
// hosts.toml ca, client and skip_verify, or the ca.crt, client.cert and
// client.key files of a certs.d directory).
type HostTLS struct {
	// CAFiles add PEM certificates to the trusted roots for this host.
	CAFiles []string
	// Clients are certificate and key files; an empty key means the key
	// is in the certificate's file.
	Clients [][2]string
	// SkipVerify does not verify the host's certificate.
	SkipVerify bool
}

// Empty reports whether t changes nothing.
func (t HostTLS) Empty() bool {
	return len(t.CAFiles) == 0 && len(t.Clients) == 0 && !t.SkipVerify
}

var hostTransports = lru.New[string, *http.Transport](32, func(t *http.Transport) { t.CloseIdleConnections() })

// HostTransport returns a transport for a host that configuration names
// explicitly (a mirror, or a registry with a certs.d directory): c's roots
// and proxies plus t. It has no plain-HTTP guard: whoever wrote
// "http://" in that configuration asked for it. Transports are shared
// while the settings and the files they name stay the same.
func HostTransport(c Config, t HostTLS) (http.RoundTripper, error) {
	roots, rootsID, err := c.roots()
	if err != nil {
		return nil, &ConfigError{err}
	}
	proxy := httpproxy.Config{
		HTTPProxy:  c.Env.First("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: c.Env.First("HTTPS_PROXY", "https_proxy"),
		NoProxy:    c.Env.First("NO_PROXY", "no_proxy"),
	}
	h := sha256.New()
	parts := []string{rootsID, proxy.HTTPProxy, proxy.HTTPSProxy, proxy.NoProxy, fmt.Sprint(t.SkipVerify)}
	for _, f := range t.CAFiles {
		parts = append(parts, "ca:"+f+":"+statID(f))
	}
	for _, p := range t.Clients {
		parts = append(parts, "client:"+p[0]+":"+statID(p[0])+":"+p[1]+":"+statID(p[1]))
	}
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	key := hex.EncodeToString(h.Sum(nil))
	if tr, ok := hostTransports.Get(key); ok {
		return tr, nil
	}
	if len(t.CAFiles) > 0 {
		if roots == nil {
			if roots, err = x509.SystemCertPool(); err != nil || roots == nil {
				roots = x509.NewCertPool()
			}
		} else {
			roots = roots.Clone()
		}
		for _, f := range t.CAFiles {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, &ConfigError{fmt.Errorf("reading CA certificate: %w", err)}
			}
			if !roots.AppendCertsFromPEM(data) {
				return nil, &ConfigError{fmt.Errorf("CA certificate file %s holds no PEM certificate", f)}
			}
		}
	}
	tr := newHTTPTransport(roots, t.SkipVerify, proxy)
	for _, p := range t.Clients {
		cert, err := loadPair(p[0], p[1])
		if err != nil {
			return nil, &ConfigError{err}
		}
		tr.TLSClientConfig.Certificates = append(tr.TLSClientConfig.Certificates, cert)
	}
	return hostTransports.Add(key, tr), nil
}

// loadPair reads a client certificate and its key (from the certificate's
// own file when keyFile is empty).
func loadPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading client certificate: %w", err)
	}
	keyPEM := certPEM
	if keyFile != "" {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return tls.Certificate{}, fmt.Errorf("reading client key: %w", err)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate %s: %w", certFile, err)
	}
	return cert, nil
}
