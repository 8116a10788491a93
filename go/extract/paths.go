package extract

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
)

// claim checks that a non-directory may be created at name: nothing is
// there yet (overwriting a file with a symlink is the classic attack), and
// the directories above it are real ones.
func (x *extraction) claim(entry, name string) error {
	if _, ok := x.seen[name]; ok {
		return unsafe(entry, "appears twice")
	}
	return x.parents(entry, name)
}

// parents checks the directories above name as they are on disk, creating
// those the archive left out. os.Root already keeps every operation inside
// the root; this also refuses to write through a symlink an earlier entry
// made, which would put the entry somewhere other than its name says.
func (x *extraction) parents(entry, name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	missing := false // below a missing directory, nothing exists
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		p := dir[:i]
		if !missing {
			fi, err := x.root.Lstat(p)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				missing = true
			case err != nil:
				return fmt.Errorf("extracting %q: %w", entry, err)
			case fi.Mode()&fs.ModeSymlink != 0:
				return unsafe(entry, "entry goes through a symlink (%q)", p)
			case !fi.IsDir():
				return unsafe(entry, "%q is not a directory", p)
			default:
				continue
			}
		}
		if err := x.mkdir(entry, p); err != nil {
			return err
		}
	}
	return nil
}

// targetProblem says why a symlink at name may not point at target, or ""
// when it may: the target must be relative and, resolved against the
// link's directory, stay inside the root.
func targetProblem(name, target string) string {
	switch {
	case target == "":
		return "symlink with an empty target"
	case strings.ContainsRune(target, 0):
		return "symlink target contains NUL"
	case strings.Contains(target, `\`):
		return fmt.Sprintf("symlink target %q contains a backslash", target)
	case strings.HasPrefix(target, "/") || filepath.IsAbs(target) || filepath.VolumeName(target) != "":
		return fmt.Sprintf("symlink target %q is absolute", target)
	}
	// The check below is lexical, but the kernel resolves "d/.." from
	// wherever d points when d is a symlink ("d" -> "." makes "d/.." the
	// root's parent). Leading ".." climb the link's own directories,
	// which are real ones (parents refuses symlinks there), so only those
	// are allowed.
	named := false
	for part := range strings.SplitSeq(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if named {
				return fmt.Sprintf("symlink target %q has .. after a name", target)
			}
		default:
			named = true
		}
	}
	if to := path.Join(path.Dir(name), target); to == ".." || strings.HasPrefix(to, "../") {
		return fmt.Sprintf("symlink target %q leaves the directory", target)
	}
	return ""
}
