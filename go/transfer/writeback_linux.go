package transfer

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to begin writing [off, off+n) to disk
// without waiting for it. Kicked as data arrives, write-back overlaps the
// download, so the fsync before the final rename has little left to do and
// dirty pages never pile up to the point where the kernel throttles writers.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
