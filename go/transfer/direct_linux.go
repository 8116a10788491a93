package transfer

import (
	"errors"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// openDirect opens f's file a second time for O_DIRECT writes, which go from
// our buffers to the device without passing through the page cache: a
// multi-GB pull then neither evicts the page cache nor piles up dirty
// pages for the kernel to throttle, and the fsync before the rename has
// almost nothing left to flush. Only on local disk file systems known to
// do it well; elsewhere (tmpfs, where the page cache is the storage; NFS,
// where every O_DIRECT write is a synchronous round trip; FUSE) nil, and
// the caller writes buffered.
func openDirect(f *os.File) *os.File {
	if !directFS(f.Name()) {
		return nil
	}
	// Through /proc the new descriptor is certainly the same (locked)
	// file, whatever has happened to its name since; the name is the
	// fallback where /proc is not mounted. Either way it carries f's name,
	// which is what a failed write's error must show.
	for _, path := range []string{"/proc/self/fd/" + strconv.Itoa(int(f.Fd())), f.Name()} {
		if fd, err := unix.Open(path, unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0); err == nil {
			return os.NewFile(uintptr(fd), f.Name())
		}
	}
	return nil
}

// directRefused tells a file system that will not do this O_DIRECT write
// (wrong alignment for its block size, or no O_DIRECT support after all)
// from a real I/O failure.
func directRefused(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP)
}

// directFS reports whether path is on a file system O_DIRECT is used on.
func directFS(path string) bool {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return false
	}
	switch int64(st.Type) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.F2FS_SUPER_MAGIC:
		return true
	}
	return false
}
