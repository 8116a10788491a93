package model

import (
	"fmt"
	"strings"
)

// checkDescriptor refuses what no registry could serve: a digest that is not
// canonical sha256 or sha512 (the two a puller can verify) or a negative size.
func checkDescriptor(d Descriptor) error {
	algo, hex, _ := strings.Cut(d.Digest, ":")
	want := 0
	switch algo {
	case "sha256":
		want = 64
	case "sha512":
		want = 128
	}
	if want == 0 || len(hex) != want || strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("digest %q: want sha256:<64 hex> or sha512:<128 hex>, lower case", d.Digest)
	}
	if d.Size < 0 {
		return fmt.Errorf("%s: negative size %d", d.Digest, d.Size)
	}
	return nil
}

// baseType is a media type without parameters, as compared.
func baseType(mediaType string) string {
	mt, _, _ := strings.Cut(mediaType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}
