package pushmodel

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/oci-client/liboci/model"
)

// file is one file of the directory being published.
type file struct {
	rel  string // slash separated, relative to the directory
	abs  string // what is read: its path under the resolved directory, or a symlink's resolved target
	size int64
	kind string
	info os.FileInfo // of the file read (the symlink's target)
	// named is the digest a link into the cache's blobs carries in the
	// blob's name ("" for other files).
	named string
}

// skipped reports a name that is never published: hidden files and
// directories (.git, .cache/huggingface, our own .oci-client record) and
// the partial files of an interrupted download.
func skipped(name string) bool {
	return strings.HasPrefix(name, ".") || name == "__pycache__" ||
		strings.HasSuffix(name, ".incomplete") || strings.HasSuffix(name, ".lock")
}

// listFiles walks dir (resolved, so that a directory reached through a
// symlink is walked too). Symlinks to regular files are followed where
// rule allows (snapshots of huggingface_hub's cache and of ours are made
// of them; see linkRule, with cache and followAll), and read at their
// resolved target so that what is published is what was checked; every
// link refused is named in one error, before anything is read. Symlinked
// directories, devices, sockets and FIFOs are refused rather than guessed at.
func listFiles(dir, cache string, followAll bool) ([]file, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	rule, err := newLinkRule(dir, cache, followAll)
	if err != nil {
		return nil, err
	}
	var files []file
	var refused []string
	err = filepath.WalkDir(rule.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == rule.root {
			return nil
		}
		if skipped(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(rule.root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !utf8.ValidString(rel) || strings.ContainsAny(rel, "\\\x00") {
			return fmt.Errorf("file name %q cannot be published (not UTF-8, or holds a backslash)", rel)
		}
		abs, named := p, ""
		if d.Type()&fs.ModeSymlink != 0 {
			target, out, err := rule.followLink(p, rel)
			if err != nil {
				return err
			}
			if out {
				refused = append(refused, fmt.Sprintf("%s (a symlink to %s)", rel, target))
				return nil
			}
			abs, named = target, rule.cacheDigest(target)
		}
		info, err := os.Stat(abs)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			return fmt.Errorf("%s is a symlink to a directory, which is not followed: copy it in, or link its files", rel)
		case !info.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file (%s)", rel, info.Mode().Type())
		}
		files = append(files, file{rel: rel, abs: abs, size: info.Size(), kind: model.KindOf(rel, info.Size()), info: info, named: named})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(refused) > 0 {
		return nil, refusedLinks(refused)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no files to publish", dir)
	}
	// Weights first, in name order (which is shard order), then the rest.
	slices.SortStableFunc(files, func(a, b file) int {
		aw, bw := a.kind == model.KindWeight, b.kind == model.KindWeight
		if aw != bw {
			if aw {
				return -1
			}
			return 1
		}
		return strings.Compare(a.rel, b.rel)
	})
	return files, nil
}
