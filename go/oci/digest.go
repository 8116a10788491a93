package oci

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strings"
)

// blobDigest is a parsed "algorithm:hex" content address.
type blobDigest struct {
	str     string
	algo    string
	hex     string
	newHash func() hash.Hash
}

// parseDigest accepts sha256 and sha512 digests in canonical lower-case hex;
// anything else could not be verified, so it is refused up front.
func parseDigest(s string) (blobDigest, error) {
	algo, hexPart, ok := strings.Cut(s, ":")
	if !ok {
		return blobDigest{}, newError(CodeInvalidArgument, "parsing digest %q: want algorithm:hex", s)
	}
	var want int
	var h func() hash.Hash
	switch algo {
	case "sha256":
		want, h = 64, sha256.New
	case "sha512":
		want, h = 128, sha512.New
	default:
		return blobDigest{}, newError(CodeInvalidArgument, "parsing digest %q: unsupported algorithm %q (want sha256 or sha512)", s, algo)
	}
	if len(hexPart) != want || strings.Trim(hexPart, "0123456789abcdef") != "" {
		return blobDigest{}, newError(CodeInvalidArgument, "parsing digest %q: want %d lower-case hex digits", s, want)
	}
	return blobDigest{str: s, algo: algo, hex: hexPart, newHash: h}, nil
}
