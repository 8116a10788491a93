//go:build linux || darwin

package transfer

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// FreeSpace reports the bytes this process may still put on the file
// system holding dir, and which device that is (so that destinations
// on one file system are counted together). ok is false where the file
// system does not say (pseudo file systems report no blocks at all).
func FreeSpace(dir string) (free int64, dev uint64, ok bool) {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, 0, false
	}
	st, isStat := fi.Sys().(*syscall.Stat_t)
	var fs unix.Statfs_t
	if !isStat || unix.Statfs(dir, &fs) != nil || fs.Blocks == 0 || fs.Bsize <= 0 {
		return 0, 0, false
	}
	blocks := fs.Bavail
	if os.Geteuid() == 0 {
		// Root may also write the blocks the file system reserves (5 % on
		// ext4): counting only Bavail would refuse pulls that fit.
		blocks = fs.Bfree
	}
	avail := blocks * uint64(fs.Bsize)
	if avail > 1<<62 {
		avail = 1 << 62
	}
	return int64(avail), uint64(st.Dev), true // Dev is an int32 on darwin
}
