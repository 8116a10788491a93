package netconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/envmap"
)

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func issue(t *testing.T, parent *keyPair, tmpl *x509.Certificate) *keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &keyPair{cert, key, der}
}

func (k *keyPair) write(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	certPath, keyPath := filepath.Join(dir, name+".cert"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.der}), 0o644); err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k.key)
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// TestHostTransportCAAndClientCertificate: a server that trusts only client
// certificates of its own CA, reached with the CA and a client pair from
// configuration, and refused without the pair.
func TestHostTransportCAAndClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := issue(t, nil, &x509.Certificate{Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign})
	server := issue(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "server"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	client := issue(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "node"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	caPath, _ := ca.write(t, dir, "ca")
	certPath, keyPath := client.write(t, dir, "client")

	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.TLS.PeerCertificates[0].Subject.CommonName))
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{server.der}, PrivateKey: server.key}},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	srv.StartTLS()
	defer srv.Close()

	cfg := Config{Env: envmap.Env{}}
	get := func(tlsCfg HostTLS) (string, error) {
		rt, err := HostTransport(cfg, tlsCfg)
		if err != nil {
			return "", err
		}
		resp, err := (&http.Client{Transport: rt}).Get(srv.URL)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var b [64]byte
		n, _ := resp.Body.Read(b[:])
		return string(b[:n]), nil
	}
	if got, err := get(HostTLS{CAFiles: []string{caPath}, Clients: [][2]string{{certPath, keyPath}}}); err != nil || got != "node" {
		t.Fatalf("with CA and client pair: %q, %v", got, err)
	}
	if _, err := get(HostTLS{CAFiles: []string{caPath}}); err == nil {
		t.Fatal("the server took a client without a certificate")
	}
	if _, err := get(HostTLS{Clients: [][2]string{{certPath, keyPath}}}); err == nil {
		t.Fatal("a certificate of an unknown CA was trusted")
	}
	// skip_verify trusts any server; the client still shows its certificate.
	if got, err := get(HostTLS{SkipVerify: true, Clients: [][2]string{{certPath, keyPath}}}); err != nil || got != "node" {
		t.Fatalf("skip_verify: %q, %v", got, err)
	}
	if _, err := HostTransport(cfg, HostTLS{Clients: [][2]string{{certPath, caPath}}}); err == nil {
		t.Fatal("a key that is not the certificate's was accepted")
	}
}
