package mirrors

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/oci-client/liboci/internal/envmap"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// noSystem keeps the machine's own /etc out of a test.
func noSystem(t *testing.T) {
	dirs, conf := SystemCertsDirs, SystemRegistriesConf
	SystemCertsDirs, SystemRegistriesConf = nil, filepath.Join(t.TempDir(), "none.conf")
	t.Cleanup(func() { SystemCertsDirs, SystemRegistriesConf = dirs, conf })
}

// wantMirrors resolves reg's repository "a" with s and wants exactly the
// hosts want, in order.
func wantMirrors(t *testing.T, s Settings, reg string, want ...string) Config {
	t.Helper()
	cfg, err := Resolve(s, reg, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(cfg.Mirrors); !reflect.DeepEqual(got, append([]string{}, want...)) {
		t.Fatalf("%s: got %v, want %v", reg, got, want)
	}
	return cfg
}

func keys(hs []Host) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, h.Key())
	}
	return out
}

func TestHostsTomlOrderCapabilitiesAndTLS(t *testing.T) {
	noSystem(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "registry.example_5000_", "hosts.toml"), `
server = "https://registry.example:5000"
ca = "origin-ca.pem"
client = [["origin.cert", "/abs/origin.key"]]

[host."http://zeta.mirror:8080"]
  capabilities = ["pull"]
  header = { X-Dragonfly-Registry = "https://registry.example:5000", X-Multi = ["a", "b"] }

[host."https://alpha.mirror/base/path"]
  capabilities = ["pull", "resolve"]
  override_path = true
  skip_verify = true
  ca = ["a.pem", "/etc/b.pem"]
  client = "both.pem"

[host."https://mid.mirror/prefix"]
`)
	cfg, err := Resolve(Settings{CertsDirs: []string{dir}}, "registry.example:5000", "org/model")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://zeta.mirror:8080/v2", "https://alpha.mirror/base/path", "https://mid.mirror/prefix/v2"}
	if got := keys(cfg.Mirrors); !reflect.DeepEqual(got, want) {
		t.Fatalf("hosts %v, want %v (the file's order)", got, want)
	}
	z, a, m := cfg.Mirrors[0], cfg.Mirrors[1], cfg.Mirrors[2]
	if !z.Pull || z.Resolve || !a.Pull || !a.Resolve || !m.Pull || !m.Resolve {
		t.Fatalf("capabilities: %+v %+v %+v", z, a, m)
	}
	if got := z.Header.Values("X-Multi"); !reflect.DeepEqual(got, []string{"a", "b"}) || z.Header.Get("X-Dragonfly-Registry") != "https://registry.example:5000" {
		t.Fatalf("headers %v", z.Header)
	}
	hd := filepath.Join(dir, "registry.example_5000_")
	if !a.TLS.SkipVerify || !reflect.DeepEqual(a.TLS.CAFiles, []string{filepath.Join(hd, "a.pem"), "/etc/b.pem"}) ||
		!reflect.DeepEqual(a.TLS.Clients, [][2]string{{filepath.Join(hd, "both.pem"), ""}}) {
		t.Fatalf("tls %+v", a.TLS)
	}
	if !reflect.DeepEqual(cfg.OriginTLS.CAFiles, []string{filepath.Join(hd, "origin-ca.pem")}) ||
		!reflect.DeepEqual(cfg.OriginTLS.Clients, [][2]string{{filepath.Join(hd, "origin.cert"), "/abs/origin.key"}}) {
		t.Fatalf("origin tls %+v", cfg.OriginTLS)
	}
	if u := z.URL("org/model", "blobs/sha256:ab", "registry.example:5000"); u.String() != "http://zeta.mirror:8080/v2/org/model/blobs/sha256:ab?ns=registry.example%3A5000" {
		t.Fatalf("url %s", u)
	}
	if u := a.URL("org/model", "manifests/v1", "x"); u.Path != "/base/path/org/model/manifests/v1" {
		t.Fatalf("override_path url %s", u)
	}
}

func TestHostsTomlDefaultDirAndDirOrder(t *testing.T) {
	noSystem(t)
	first, second := t.TempDir(), t.TempDir()
	write(t, filepath.Join(first, "_default", "hosts.toml"), `[host."https://everything.mirror"]`+"\n")
	write(t, filepath.Join(second, "ghcr.io", "hosts.toml"), `[host."https://ghcr.mirror"]`+"\n")
	cfg, err := Resolve(Settings{CertsDirs: []string{first, second}}, "ghcr.io", "a/b")
	if err != nil {
		t.Fatal(err)
	}
	// As containerd with several roots: the first root that has anything wins.
	if got := keys(cfg.Mirrors); !reflect.DeepEqual(got, []string{"https://everything.mirror/v2"}) {
		t.Fatalf("got %v", got)
	}
	cfg, _ = Resolve(Settings{CertsDirs: []string{second, first}}, "ghcr.io", "a/b")
	if got := keys(cfg.Mirrors); !reflect.DeepEqual(got, []string{"https://ghcr.mirror/v2"}) {
		t.Fatalf("got %v", got)
	}
	// Docker Hub's directory is docker.io, whatever the reference's host.
	write(t, filepath.Join(second, "docker.io", "hosts.toml"), "server = \"https://registry-1.docker.io\"\n[host.\"https://hub.mirror\"]\n[host.\"https://registry-1.docker.io\"]\n")
	cfg, _ = Resolve(Settings{CertsDirs: []string{second}}, "index.docker.io", "library/x")
	if got := keys(cfg.Mirrors); !reflect.DeepEqual(got, []string{"https://hub.mirror/v2"}) {
		t.Fatalf("got %v", got)
	}
	// OCI_CLIENT_CERTS_DIR when the option is not set.
	cfg, _ = Resolve(Settings{Env: envmap.Env{"OCI_CLIENT_CERTS_DIR": second}}, "ghcr.io", "a/b")
	if got := keys(cfg.Mirrors); !reflect.DeepEqual(got, []string{"https://ghcr.mirror/v2"}) {
		t.Fatalf("env: got %v", got)
	}
}

func TestServerElsewhereComesLast(t *testing.T) {
	noSystem(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "quay.io", "hosts.toml"), "server = \"https://quay.internal\"\n[host.\"https://m1\"]\ncapabilities=[\"pull\"]\n")
	cfg, err := Resolve(Settings{CertsDirs: []string{dir}}, "quay.io", "a")
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(cfg.Mirrors); !reflect.DeepEqual(got, []string{"https://m1/v2", "https://quay.internal/v2"}) {
		t.Fatalf("got %v", got)
	}
}

func TestDockerCertFiles(t *testing.T) {
	noSystem(t)
	dir := t.TempDir()
	hd := filepath.Join(dir, "reg.example:8443")
	write(t, filepath.Join(hd, "ca.crt"), "x")
	write(t, filepath.Join(hd, "client.cert"), "x")
	write(t, filepath.Join(hd, "client.key"), "x")
	write(t, filepath.Join(hd, "other.cert"), "x")
	cfg, err := Resolve(Settings{CertsDirs: []string{dir}}, "reg.example:8443", "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Mirrors) != 0 {
		t.Fatalf("mirrors from certificate files: %v", cfg.Mirrors)
	}
	want := [][2]string{{filepath.Join(hd, "client.cert"), filepath.Join(hd, "client.key")}, {filepath.Join(hd, "other.cert"), ""}}
	if !reflect.DeepEqual(cfg.OriginTLS.CAFiles, []string{filepath.Join(hd, "ca.crt")}) || !reflect.DeepEqual(cfg.OriginTLS.Clients, want) {
		t.Fatalf("tls %+v", cfg.OriginTLS)
	}
	// A mirror's own directory gives it its TLS.
	mirror := filepath.Join(dir, "mirror.example")
	write(t, filepath.Join(mirror, "ca.crt"), "x")
	cfg, _ = Resolve(Settings{CertsDirs: []string{dir}, Mirrors: map[string][]string{"*": {"mirror.example"}}}, "reg.example:8443", "a")
	if len(cfg.Mirrors) != 1 || !reflect.DeepEqual(cfg.Mirrors[0].TLS.CAFiles, []string{filepath.Join(mirror, "ca.crt")}) {
		t.Fatalf("mirror tls %+v", cfg.Mirrors)
	}
}

func TestBadHostsToml(t *testing.T) {
	noSystem(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.io", "hosts.toml"), "[host.\"https://m\"]\ncapabilities=[\"fly\"]\n")
	if _, err := Resolve(Settings{CertsDirs: []string{dir}}, "a.io", "r"); err == nil {
		t.Fatal("unknown capability accepted")
	}
	write(t, filepath.Join(dir, "b.io", "hosts.toml"), "[host.\"https://m\"\n")
	if _, err := Resolve(Settings{CertsDirs: []string{dir}}, "b.io", "r"); err == nil {
		t.Fatal("broken TOML accepted")
	}
}

func TestRegistriesConf(t *testing.T) {
	noSystem(t)
	conf := filepath.Join(t.TempDir(), "registries.conf")
	write(t, conf, `
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "hub.mirror/dockerhub"
[[registry.mirror]]
location = "digest.mirror"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tag.mirror:5000"
insecure = true
pull-from-mirror = "tag-only"

[[registry]]
prefix = "docker.io/library"
location = "docker.io/library"
mirror-by-digest-only = true
[[registry.mirror]]
location = "lib.mirror/official"

[[registry]]
prefix = "*.corp.example"
[[registry.mirror]]
location = "corp.mirror"
`)
	env := envmap.Env{"CONTAINERS_REGISTRIES_CONF": conf}
	cfg, err := Resolve(Settings{Env: env}, "index.docker.io", "org/model")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Mirrors) != 3 {
		t.Fatalf("mirrors %v", keys(cfg.Mirrors))
	}
	hub, dig, tag := cfg.Mirrors[0], cfg.Mirrors[1], cfg.Mirrors[2]
	if !hub.Pull || !hub.Resolve || !dig.Pull || dig.Resolve || !tag.TagOnly || !tag.Insecure || !tag.TLS.SkipVerify {
		t.Fatalf("pull-from-mirror: %+v %+v %+v", hub, dig, tag)
	}
	if u := hub.URL("org/model", "manifests/v1", "docker.io"); u.String() != "https://hub.mirror/v2/dockerhub/org/model/manifests/v1?ns=docker.io" {
		t.Fatalf("url %s", u)
	}
	// The longest prefix wins, and maps the repository.
	cfg, _ = Resolve(Settings{Env: env}, "docker.io", "library/ubuntu")
	if len(cfg.Mirrors) != 1 || cfg.Mirrors[0].Resolve {
		t.Fatalf("library: %+v", cfg.Mirrors)
	}
	if u := cfg.Mirrors[0].URL("library/ubuntu", "blobs/sha256:1", ""); u.Path != "/v2/official/ubuntu/blobs/sha256:1" {
		t.Fatalf("library url %s", u)
	}
	cfg, _ = Resolve(Settings{Env: env}, "reg.corp.example", "team/m")
	if len(cfg.Mirrors) != 1 || cfg.Mirrors[0].URL("team/m", "blobs/sha256:1", "").Path != "/v2/team/m/blobs/sha256:1" {
		t.Fatalf("wildcard: %+v", cfg.Mirrors)
	}
	cfg, _ = Resolve(Settings{Env: env}, "ghcr.io", "a")
	if len(cfg.Mirrors) != 0 {
		t.Fatalf("unmatched: %+v", cfg.Mirrors)
	}
	// The user's file when the variable is unset.
	home := t.TempDir()
	write(t, filepath.Join(home, ".config", "containers", "registries.conf"), "[[registry]]\nlocation=\"ghcr.io\"\n[[registry.mirror]]\nlocation=\"user.mirror\"\n")
	cfg, _ = Resolve(Settings{Env: envmap.Env{"HOME": home}}, "ghcr.io", "a")
	if got := keys(cfg.Mirrors); !reflect.DeepEqual(got, []string{"https://user.mirror/v2"}) {
		t.Fatalf("user file: %v", got)
	}
}

func TestPrecedence(t *testing.T) {
	noSystem(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "ghcr.io", "hosts.toml"), "[host.\"https://toml.mirror\"]\n")
	conf := filepath.Join(t.TempDir(), "registries.conf")
	write(t, conf, "[[registry]]\nlocation=\"ghcr.io\"\n[[registry.mirror]]\nlocation=\"conf.mirror\"\n[[registry]]\nlocation=\"quay.io\"\n[[registry.mirror]]\nlocation=\"quay.mirror\"\n")
	env := envmap.Env{"CONTAINERS_REGISTRIES_CONF": conf, "OCI_CLIENT_MIRRORS": "ghcr.io=http://env.mirror:5000, https://env2.mirror ; example.com="}
	s := Settings{Env: env, CertsDirs: []string{dir}}
	wantMirrors(t, s, "ghcr.io", "http://env.mirror:5000/v2", "https://env2.mirror/v2")
	wantMirrors(t, s, "example.com") // an empty list: none, and nothing else is asked
	wantMirrors(t, s, "quay.io", "https://quay.mirror/v2")
	s.Mirrors = map[string][]string{"*": {"opt.mirror"}}
	wantMirrors(t, s, "ghcr.io", "https://opt.mirror/v2")
	delete(env, "OCI_CLIENT_MIRRORS")
	s.Mirrors = nil
	wantMirrors(t, s, "ghcr.io", "https://toml.mirror/v2")
	if _, err := Resolve(Settings{Env: envmap.Env{"OCI_CLIENT_MIRRORS": "no-equals-sign"}}, "ghcr.io", "a"); err == nil {
		t.Fatal("bad OCI_CLIENT_MIRRORS accepted")
	}
}

func TestSplitPath(t *testing.T) {
	for _, c := range []struct {
		path, repo, kind, ref string
		ok                    bool
	}{
		{"/v2/a/b/manifests/v1", "a/b", "manifests", "v1", true},
		{"/v2/a/blobs/sha256:abc", "a", "blobs", "sha256:abc", true},
		{"/v2/a/blobs/uploads/", "", "", "", false},
		{"/v2/a/blobs/uploads/123", "", "", "", false},
		{"/v2/", "", "", "", false},
		{"/v2/a/tags/list", "", "", "", false},
	} {
		repo, kind, ref, ok := splitPath(c.path)
		if repo != c.repo || kind != c.kind || ref != c.ref || ok != c.ok {
			t.Errorf("%s: %q %q %q %v", c.path, repo, kind, ref, ok)
		}
	}
}

func TestEligible(t *testing.T) {
	pullOnly := Host{Pull: true}
	all := Host{Pull: true, Resolve: true}
	tagOnly := Host{Pull: true, Resolve: true, TagOnly: true}
	if eligible(pullOnly, true, false) || !eligible(pullOnly, false, false) || !eligible(pullOnly, false, true) {
		t.Fatal("pull-only host")
	}
	if !eligible(all, true, false) || !eligible(all, false, true) {
		t.Fatal("pull+resolve host")
	}
	if eligible(tagOnly, false, true) || !eligible(tagOnly, false, false) {
		t.Fatal("tag-only host")
	}
}

// Drop-ins in registries.conf.d: read after the main file in name order,
// each [[registry]] replacing an earlier one of the same prefix whole;
// the user's directory after the system's; blocked entries said.
func TestRegistriesConfDropInsAndBlocked(t *testing.T) {
	noSystem(t)
	sys := filepath.Join(t.TempDir(), "registries.conf")
	SystemRegistriesConf = sys
	write(t, sys, "[[registry]]\nlocation=\"ghcr.io\"\n[[registry.mirror]]\nlocation=\"main.mirror\"\n"+
		"[[registry]]\nlocation=\"quay.io\"\n[[registry.mirror]]\nlocation=\"quay.mirror\"\n")
	write(t, sys+".d/10-ghcr.conf", "[[registry]]\nlocation=\"ghcr.io\"\n[[registry.mirror]]\nlocation=\"dropin.mirror\"\n")
	write(t, sys+".d/20-blocked.conf", "[[registry]]\nprefix=\"evil.example\"\nlocation=\"evil.example\"\nblocked=true\n")
	write(t, sys+".d/notes.txt", "[[registry]]\nlocation=\"ghcr.io\"\nblocked=true\n") // not a .conf
	home := t.TempDir()
	write(t, filepath.Join(home, ".config", "containers", "registries.conf.d", "00-user.conf"),
		"[[registry]]\nlocation=\"quay.io\"\n[[registry.mirror]]\nlocation=\"user.mirror\"\n")
	env := envmap.Env{"HOME": home}
	check := func(reg string, want ...string) Config {
		t.Helper()
		return wantMirrors(t, Settings{Env: env}, reg, want...)
	}
	if cfg := check("ghcr.io", "https://dropin.mirror/v2"); cfg.Blocked != "" {
		t.Fatalf("ghcr.io blocked by %s", cfg.Blocked)
	}
	check("quay.io", "https://user.mirror/v2") // the user's drop-in comes last
	if cfg := check("evil.example"); cfg.Blocked == "" || !strings.Contains(cfg.Blocked, "20-blocked.conf") {
		t.Fatalf("evil.example: blocked %q", cfg.Blocked)
	}
	// Blocked whatever source gives the mirrors.
	env["OCI_CLIENT_MIRRORS"] = "evil.example=https://m"
	if cfg := check("evil.example", "https://m/v2"); cfg.Blocked == "" {
		t.Fatal("the variable's mirrors lifted the block")
	}
	// A user's own registries.conf: the system's file and drop-ins are not read.
	write(t, filepath.Join(home, ".config", "containers", "registries.conf"), "")
	delete(env, "OCI_CLIENT_MIRRORS")
	check("ghcr.io")
	check("quay.io", "https://user.mirror/v2")
	if cfg := check("evil.example"); cfg.Blocked != "" {
		t.Fatal("the system's drop-in was read beside the user's file")
	}
}
