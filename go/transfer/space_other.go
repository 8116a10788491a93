//go:build !linux && !darwin

package transfer

// FreeSpace is known on Linux and macOS only; elsewhere a pull learns of a
// full disk from its first failed write.
func FreeSpace(string) (int64, uint64, bool) { return 0, 0, false }
