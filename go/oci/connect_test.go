package oci_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/oci"
)

func TestPortOutOfRangeIsAnInvalidReference(t *testing.T) {
	t.Parallel()
	c := anonClient(t)
	for _, ref := range []string{"reg.test:99999/x:v1", "reg.test:0/x:v1", "reg.test:65536/x", "127.0.0.1:100000/x", "[::1]:70000/x"} {
		_, err := c.ParseReference(ref)
		e := wantCode(t, err, oci.CodeInvalidReference)
		if !strings.Contains(e.Error(), "invalid port") {
			t.Errorf("%s: %q does not name the port", ref, e.Error())
		}
	}
	for _, ref := range []string{"reg.test:65535/x:v1", "reg.test:1/x", "127.0.0.1:5000/x", "[::1]:5000/x", "[::1]/x", "reg.test/x"} {
		if _, err := c.ParseReference(ref); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
	}
}

// failsWith fetches ref's manifest once (no retries) and wants code and a
// message that starts with prefix and says nothing of logins.
func failsWith(t *testing.T, c *oci.Client, ref string, code oci.Code, prefix string) {
	t.Helper()
	_, err := mustWith(t, c, oci.WithRetries(1)).PullManifest(ctx(t), ref)
	e := wantCode(t, err, code)
	msg := e.Error()
	t.Logf("%s: %s", code, msg)
	if !strings.HasPrefix(msg, prefix) {
		t.Errorf("%s: message %q, want it to start %q", ref, msg, prefix)
	}
	for _, word := range []string{"authenticating", "anonymously", "credentials"} {
		if strings.Contains(msg, word) {
			t.Errorf("%s: message %q mentions %q", ref, msg, word)
		}
	}
}

func TestConnectionFailuresNameTheStepNotTheLogin(t *testing.T) {
	t.Parallel()
	c := anonClient(t)

	addr := testutil.FreePort(t)
	failsWith(t, c, addr+"/x:v1", oci.CodeNetwork, "connecting to "+addr+": connection refused")

	// RFC 6761: .invalid never resolves.
	failsWith(t, c, "registry.oci-client.invalid/x:v1", oci.CodeNetwork, "resolving registry.oci-client.invalid: ")

	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are the point
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	host := strings.TrimPrefix(tlsSrv.URL, "https://")
	failsWith(t, c, host+"/x:v1", oci.CodeTLS, "TLS handshake with "+host+": ")

	// Trusted, but it asks for a client certificate none was given for: the
	// server's alert says so, and the message says where one goes.
	mtls := httptest.NewUnstartedServer(http.NotFoundHandler())
	mtls.Config.ErrorLog = log.New(io.Discard, "", 0)
	mtls.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	mtls.StartTLS()
	t.Cleanup(mtls.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mtls.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	mhost := strings.TrimPrefix(mtls.URL, "https://")
	failsWith(t, mustWith(t, c, oci.WithCAFile(ca)), mhost+"/x:v1", oci.CodeTLS, "TLS handshake with "+mhost+": ")
	_, err := mustWith(t, c, oci.WithCAFile(ca), oci.WithRetries(1)).PullManifest(ctx(t), mhost+"/x:v1")
	if err == nil || !strings.Contains(err.Error(), "client.cert and client.key") {
		t.Errorf("client certificate asked for: %v", err)
	}

	// Accepted (by the kernel) but never answered: the caller's deadline ends it.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	short, cancel := context.WithTimeout(ctx(t), 300*time.Millisecond)
	defer cancel()
	_, err = mustWith(t, c, oci.WithRetries(1)).PullManifest(short, silent.Addr().String()+"/x:v1")
	msg := wantCode(t, err, oci.CodeTimeout).Error()
	t.Logf("TIMEOUT: %s", msg)
	if !strings.HasPrefix(msg, "waiting for "+silent.Addr().String()+": ") {
		t.Errorf("silent registry: %q", msg)
	}

	// A token server that is gone is named as such, not as a login problem.
	reg := testutil.NewRegistry(t)
	ts := testutil.NewTokenServer(t, "", "")
	ts.Realm = "http://localhost:" + strings.Split(testutil.FreePort(t), ":")[1] + "/token"
	reg.Use(ts.Bearer("repository:x:pull"))
	failsWith(t, c, reg.Ref("x", ":v1"), oci.CodeNetwork, "connecting to localhost:")
	_, err = mustWith(t, c, oci.WithRetries(1)).PullManifest(ctx(t), reg.Ref("x", ":v1"))
	if err == nil || !strings.Contains(err.Error(), "(the token server for "+reg.Host+")") {
		t.Errorf("token server unreachable: %v", err)
	}
}

func TestLoginFailuresStillNameTheCredentials(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	ts := testutil.NewTokenServer(t, "bob", "right-password")
	reg.Use(ts.Bearer("repository:team/model:pull"))
	e, _ := env(t, testutil.AuthsConfig(map[string][2]string{reg.Host: {"bob", "wrong-password-789"}}))
	_, err := mustNew(t, oci.WithEnv(e), oci.WithRetries(1)).PullManifest(ctx(t), reg.Ref("team/model", ":v1"))
	msg := wantCode(t, err, oci.CodeUnauthorized).Error()
	if !strings.HasPrefix(msg, "authenticating to "+reg.Host+` as "bob" (from `) || strings.Contains(msg, "wrong-password-789") ||
		strings.Contains(msg, "map[") {
		t.Errorf("message %q", msg)
	}
}
