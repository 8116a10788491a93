package extract

import (
	"errors"
	"fmt"
)

// UnsafeError refuses an archive: an entry that would land outside the
// target directory, a refused entry type, or a limit exceeded (then Entry is
// the entry that crossed it, or the last one read when the limit was crossed
// between entries).
type UnsafeError struct {
	Entry  string // the name as written in the archive
	Reason string
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("unsafe archive entry %q: %s", e.Entry, e.Reason)
}

// ErrCorrupt is wrapped by the errors for truncated or garbled tar, gzip or
// zstd streams; the decoder's own error is wrapped beside it.
var ErrCorrupt = errors.New("corrupt archive")

func unsafe(entry, format string, args ...any) *UnsafeError {
	return &UnsafeError{Entry: entry, Reason: fmt.Sprintf(format, args...)}
}
