package oci

import (
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// progressEvery is how often an upload's progress is read off its file.
const progressEvery = 100 * time.Millisecond

// fileBody is an upload body that is the *os.File itself, positioned at
// the offset to send from, so that net/http hands it to sendfile(2) on a
// plain connection (no copy through user space: on a machine whose cores
// the registry shares, that pays for hashing the file meanwhile). Progress
// is read off the file's offset, which sendfile and reads both advance,
// through a duplicate descriptor that shares it and stays open after the
// transport closes the body.
type fileBody struct {
	f      *os.File
	dup    int
	start  int64
	last   int64
	report func(n int64)
	stop   chan struct{}
	done   sync.WaitGroup
}

// openFileBody opens path at offset; report gets each new count of bytes
// taken from it.
func openFileBody(path string, offset int64, report func(int64)) (*fileBody, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	dup := -1
	var derr error
	if err := raw.Control(func(fd uintptr) { dup, derr = syscall.Dup(int(fd)) }); err != nil || derr != nil {
		f.Close()
		if err == nil {
			err = derr
		}
		return nil, err
	}
	b := &fileBody{f: f, dup: dup, start: offset, last: offset, report: report, stop: make(chan struct{})}
	b.done.Add(1)
	go b.watch()
	return b, nil
}

// reader is what the request sends: the file itself.
func (b *fileBody) reader() io.Reader { return b.f }

func (b *fileBody) watch() {
	defer b.done.Done()
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.poll()
		}
	}
}

func (b *fileBody) poll() {
	pos, err := syscall.Seek(b.dup, 0, io.SeekCurrent)
	if err == nil && pos > b.last {
		b.report(pos - b.last)
		b.last = pos
	}
}

// finish stops watching and reports the last bytes: all of them when the
// request was sent whole (sent), else what the file's offset shows.
func (b *fileBody) finish(sent int64) {
	close(b.stop)
	b.done.Wait()
	if sent >= 0 && b.start+sent > b.last {
		b.report(b.start + sent - b.last)
		b.last = b.start + sent
	} else {
		b.poll()
	}
	syscall.Close(b.dup)
	b.f.Close() // the transport closes it too; the second close is harmless
}
