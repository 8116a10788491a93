//go:build !linux

package transfer

import "os"

// openDirect is Linux-only; elsewhere every write goes through the page cache.
func openDirect(*os.File) *os.File { return nil }

func directRefused(error) bool { return false }

func directFS(string) bool { return false }
