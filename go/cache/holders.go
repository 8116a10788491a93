package cache

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxHolders bounds the repositories remembered per blob: enough mount
// sources to try, never a list that grows with every repository.
const maxHolders = 8

// holdersPath is where the repositories known to hold blob d are listed.
func (c *Cache) holdersPath(d string) string { return c.digestPath("holders", d, "") }

// Holders lists the repositories ("host/name") this cache saw holding the
// blob with digest d, because a pull fetched a model from there or a push
// put it there, most recent first. A registry may have deleted it since:
// a mount from one of them is an offer the registry may decline.
func (c *Cache) Holders(d string) []string {
	if _, _, err := SplitDigest(d); err != nil {
		return nil
	}
	b, err := os.ReadFile(c.holdersPath(d))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// NoteHolder records that repo holds each of the blobs (best effort: a
// record that cannot be written only costs an upload a mount would have
// saved). A repository already listed is left where it is, so a model
// pulled again writes nothing.
func (c *Cache) NoteHolder(repo string, digests ...string) {
	if repo == "" || strings.ContainsAny(repo, " \t\n") {
		return
	}
	for _, d := range digests {
		if _, _, err := SplitDigest(d); err != nil {
			continue
		}
		known := c.Holders(d)
		if slices.Contains(known, repo) {
			continue
		}
		known = append([]string{repo}, known...)
		known = known[:min(len(known), maxHolders)]
		p := c.holdersPath(d)
		if os.MkdirAll(filepath.Dir(p), 0o755) != nil {
			return
		}
		_ = writeFileAtomic(p, []byte(strings.Join(known, "\n")+"\n"))
	}
}
