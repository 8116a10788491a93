package pushmodel_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"syscall"
	"testing"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// layerDigest is the digest of the layer holding path in a pushed manifest.
func layerDigest(t *testing.T, raw []byte, path string) string {
	t.Helper()
	var m struct {
		Layers []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if l.Annotations["org.cncf.model.filepath"] == path {
			return l.Digest
		}
	}
	t.Fatalf("no layer for %s", path)
	return ""
}

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }
