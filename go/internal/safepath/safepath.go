// Package safepath checks the relative file paths that come from untrusted
// sources (layer annotations, archive entries) before anything is written
// under a target directory.
package safepath

import (
	"fmt"
	"strings"
)

// Error says why a path was refused.
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("refusing path %q: %s", e.Path, e.Reason) }

// MaxLen bounds a path's length in bytes (PATH_MAX on Linux).
const MaxLen = 4096

// Clean returns p as a clean relative slash-separated path that cannot leave
// the directory it is joined to: "./a//b/" is "a/b". It refuses empty paths,
// NUL and backslashes (a Windows separator, or an attempt to look like one),
// absolute paths and any ".." component. A path naming the root itself
// ("." or "./") returns "" and no error: callers skip it.
func Clean(p string) (string, error) {
	switch {
	case p == "":
		return "", &Error{p, "empty"}
	case len(p) > MaxLen:
		return "", &Error{p[:64] + "…", "longer than 4096 bytes"}
	case strings.ContainsRune(p, 0):
		return "", &Error{p, "contains NUL"}
	case strings.Contains(p, `\`):
		return "", &Error{p, "contains a backslash"}
	case strings.HasPrefix(p, "/"):
		return "", &Error{p, "absolute"}
	}
	parts := strings.Split(p, "/")
	out := parts[:0:0]
	for _, part := range parts {
		switch part {
		case "", ".":
			continue
		case "..":
			return "", &Error{p, "contains .."}
		}
		out = append(out, part)
	}
	return strings.Join(out, "/"), nil
}
