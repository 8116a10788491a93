package oci

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/oci-client/liboci/transfer"
)

// freeSpace is transfer.FreeSpace; tests give a file system of their own.
var freeSpace = transfer.FreeSpace

// checkSpace refuses, before any request, downloads that cannot fit: per
// file system, the bytes still to fetch (each blob's size less the partial
// data a resume would keep) against what it has free. That is a lower
// bound of what the pull will write (archives unpack later, and others may
// write meanwhile), so it never refuses a pull that would have fitted; a
// disk that fills up anyway fails the write with CodeNoSpace.
func checkSpace(jobs []blobJob) error {
	type volume struct {
		dir        string
		need, free int64
		blobs      int
	}
	var order []uint64
	volumes := map[uint64]*volume{}
	for _, j := range jobs {
		if j.size <= 0 {
			continue
		}
		need := j.size - transfer.PartialBytes(j.dest.Path, j.d.str, j.size)
		if need <= 0 {
			continue
		}
		dir := existingDir(filepath.Dir(j.dest.Path))
		free, dev, ok := freeSpace(dir)
		if !ok {
			continue
		}
		v := volumes[dev]
		if v == nil {
			v = &volume{dir: dir, free: free}
			volumes[dev] = v
			order = append(order, dev)
		}
		v.need += need
		v.blobs++
	}
	for _, dev := range order {
		if v := volumes[dev]; v.need > v.free {
			return newError(CodeNoSpace, "not enough space for %d %s under %s: %s more to download, %s free on its file system",
				v.blobs, plural(v.blobs, "blob", "blobs"), v.dir, byteSize(v.need), byteSize(v.free))
		}
	}
	return nil
}

// existingDir is dir or its nearest ancestor that exists: what the
// download's file system is before PullBlobs creates the directories.
func existingDir(dir string) string {
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			return dir
		}
		dir = up
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// byteSize writes n in binary units, as `df -h` does.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), -1
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTP"[i])
}
