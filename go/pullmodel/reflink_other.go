//go:build !linux

package pullmodel

import (
	"errors"
	"os"
)

// reflink is Linux-only here; elsewhere files are copied.
func reflink(dst, src *os.File) error { return errors.ErrUnsupported }
