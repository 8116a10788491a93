package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// An unfinished download of a blob to dest lives beside it:
//
//	dest.incomplete       the data; bytes [0, valid) are known to be right
//	dest.incomplete.json  which blob it is and how many bytes are valid
//
// The next pull of the same digest to the same place re-hashes the valid
// bytes and continues after them. The JSON file is written before the first
// data byte, so a data file without one is never trusted.
const (
	incompleteSuffix = ".incomplete"
	metaSuffix       = ".incomplete.json"
)

type partialMeta struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// Valid is the length of the good prefix; -1 means the whole file.
	// Data is hashed and written strictly in order, so this library
	// records -1; a length (from an earlier version, which wrote chunks out
	// of order) is still honoured.
	Valid int64 `json:"valid"`
}

// IncompletePath names the partial data file of dest.
func IncompletePath(dest string) string { return dest + incompleteSuffix }

// PartialBytes is how much of blob digest (of size, when > 0) a download
// to dest would keep from an earlier one: what resume would adopt.
func PartialBytes(dest, digest string, size int64) int64 {
	m, ok := loadMeta(dest)
	fi, err := os.Stat(IncompletePath(dest))
	if !ok || err != nil || m.Digest != digest || (size > 0 && m.Size > 0 && m.Size != size) {
		return 0
	}
	valid := fi.Size()
	if m.Valid >= 0 {
		valid = min(valid, m.Valid)
	}
	if size > 0 && valid > size {
		return 0
	}
	return valid
}

func loadMeta(dest string) (partialMeta, bool) {
	data, err := os.ReadFile(dest + metaSuffix)
	if err != nil {
		return partialMeta{}, false
	}
	var m partialMeta
	if json.Unmarshal(data, &m) != nil {
		return partialMeta{}, false
	}
	return m, true
}

func saveMeta(dest string, m partialMeta) error {
	data, _ := json.Marshal(m)
	tmp := dest + metaSuffix + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dest+metaSuffix)
}

func removePartial(dest string) {
	os.Remove(dest + incompleteSuffix)
	os.Remove(dest + metaSuffix)
}

// openLocked opens path (creating it when create is set) and takes an
// exclusive lock on it, waiting while another pull to the same destination
// holds it. When that pull finished meanwhile and renamed the file away,
// the lock is on a file that no longer has this name: open again.
// Without create, a missing file is (nil, nil); without lock, the file is
// opened as it is.
func openLocked(ctx context.Context, path string, create, lock bool) (*os.File, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	for {
		f, err := os.OpenFile(path, flags, 0o644)
		if err != nil {
			if !create && errors.Is(err, fs.ErrNotExist) {
				return nil, nil
			}
			return nil, err
		}
		if !lock {
			return f, nil
		}
		if err := flock(ctx, f); err != nil {
			f.Close()
			return nil, err
		}
		if sameFile(f, path) {
			return f, nil
		}
		f.Close()
	}
}

func flock(ctx context.Context, f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return &fs.PathError{Op: "lock", Path: f.Name(), Err: err}
		}
		if err := Sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for another pull to %s: %w", f.Name(), err)
		}
	}
}

func sameFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// hashPrefix feeds the first n bytes of f to h.
func hashPrefix(f *os.File, h hash.Hash, n int64) error {
	_, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, n), make([]byte, pieceSize))
	return err
}

// commit makes the verified data file dest; durably when sync is set: data
// synced before the rename, the directory after it.
func commit(f *os.File, dest string, sync bool) error {
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := os.Rename(f.Name(), dest); err != nil {
		return err
	}
	os.Remove(dest + metaSuffix)
	if !sync {
		return nil
	}
	if dir, err := os.Open(filepath.Dir(dest)); err == nil {
		_ = dir.Sync() // best effort: some file systems refuse directory fsync
		dir.Close()
	}
	return nil
}
