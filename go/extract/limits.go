package extract

import "math"

// Defaults for the zero fields of Limits.
const (
	DefaultMaxEntries         = 100_000
	DefaultMaxEntrySize int64 = 1 << 40 // 1 TiB
	DefaultMaxTotalSize int64 = 1 << 40 // 1 TiB
	DefaultMaxRatio           = 1000
	// RatioSlack is added to the ratio budget so that small archives,
	// whose tar headers and padding compress far better than any content,
	// are not refused.
	RatioSlack int64 = 64 << 20
)

// Limits cap what one archive may unpack. Zero (or negative, except for
// MaxRatio) fields take the defaults noted.
type Limits struct {
	// MaxEntries caps the tar headers of any type, skipped ones included.
	// Default DefaultMaxEntries (100,000).
	MaxEntries int
	// MaxEntrySize caps the bytes of one file, checked against its header
	// before a byte is written. Default DefaultMaxEntrySize (1 TiB).
	MaxEntrySize int64
	// MaxTotalSize caps the bytes of all files together (hard links count
	// nothing). Default DefaultMaxTotalSize (1 TiB).
	MaxTotalSize int64
	// MaxRatio guards against decompression bombs: for a compressed archive
	// whose CompressedSize is known (> 0), the decompressed tar stream may
	// be at most MaxRatio x CompressedSize + RatioSlack bytes. The stream
	// counts the data archive/tar skips as well as the files written, so
	// the files themselves stay within it too. Default DefaultMaxRatio
	// (1000); negative disables the guard.
	MaxRatio int
	// CompressedSize is the size of the compressed blob, for MaxRatio.
	// Default unknown (0), which disables the ratio guard.
	CompressedSize int64
}

// resolved returns l with its zero fields set to the defaults.
func (l Limits) resolved() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxEntrySize <= 0 {
		l.MaxEntrySize = DefaultMaxEntrySize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = DefaultMaxTotalSize
	}
	if l.MaxRatio == 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

// unpackBudget is how many decompressed bytes the ratio guard allows, or
// math.MaxInt64 when it does not apply. l must be resolved.
func (l Limits) unpackBudget(c Compression) int64 {
	if c == None || l.MaxRatio < 0 || l.CompressedSize <= 0 {
		return math.MaxInt64
	}
	if l.CompressedSize > (math.MaxInt64-RatioSlack)/int64(l.MaxRatio) {
		return math.MaxInt64
	}
	return int64(l.MaxRatio)*l.CompressedSize + RatioSlack
}
