package transfer

import (
	"errors"
	"os"
	"syscall"
)

// openDirect opens path a second time for O_DIRECT writes, which go from
// our buffers to the device without passing through the page cache: a
// multi-GB pull then neither evicts the page cache nor piles up dirty
// pages for the kernel to throttle, and the fsync before the rename has
// almost nothing left to flush. nil when the file system refuses (tmpfs,
// some FUSE and network file systems): the caller writes buffered.
func openDirect(path string) *os.File {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}

// directRefused tells a file system that will not do this O_DIRECT write
// (wrong alignment for its block size, or no O_DIRECT support after all)
// from a real I/O failure.
func directRefused(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP)
}
