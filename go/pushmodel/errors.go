package pushmodel

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/oci-client/liboci/oci"
)

// wrap gives err a code unless it has one.
func wrap(code oci.Code, err error) error { return oci.Coded(code, err) }

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
