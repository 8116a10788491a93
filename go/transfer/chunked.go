package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// metaInterval paces how often the valid length is recorded while chunks
// land out of order; a crash loses at most this much hashed progress.
const metaInterval = 500 * time.Millisecond

type span struct{ start, end int64 } // [start, end)

// chunked fetches [valid, size) as ranged requests over several
// connections, writing each in place. The digest still needs the bytes in
// order, so this goroutine hashes them back from the file (the page cache)
// behind the writers: memory stays flat whatever the blob size. A registry
// that ignores Range gets one ordinary stream instead.
func (j *job) chunked(ctx context.Context) error {
	var spans []span
	for s := j.valid; s < j.size; s += j.o.ChunkSize {
		spans = append(spans, span{s, min(s+j.o.ChunkSize, j.size)})
	}
	resp, wd, err := j.request(ctx, spans[0].start, spans[0].end-1)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		wd.stop()
		j.o.Connections = 1
		return j.stream(ctx)
	}
	if _, err := j.startOf(resp, spans[0].start); err != nil {
		resp.Body.Close()
		wd.stop()
		return err
	}
	// Written before any byte lands past the valid prefix.
	if err := j.open(ctx, j.valid); err != nil {
		resp.Body.Close()
		wd.stop()
		return err
	}
	j.meta = time.Now()

	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan int, len(spans))
	var next atomic.Int64
	next.Store(1)
	var wg sync.WaitGroup
	work := func(idx int, resp *http.Response, wd *watchdog) {
		defer wg.Done()
		for idx < len(spans) {
			if err := j.fetchSpan(gctx, spans[idx], resp, wd); err != nil {
				cancel(err)
				return
			}
			done <- idx
			resp, wd = nil, nil
			idx = int(next.Add(1) - 1)
		}
	}
	wg.Add(1)
	go work(0, resp, wd)
	for w := 1; w < j.o.Connections; w++ {
		idx := int(next.Add(1) - 1)
		if idx >= len(spans) {
			break
		}
		wg.Add(1)
		go work(idx, nil, nil)
	}

	err = j.hashInOrder(gctx, spans, done)
	if err != nil {
		cancel(err)
	}
	wg.Wait()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (j *job) hashInOrder(ctx context.Context, spans []span, done <-chan int) error {
	ready := make([]bool, len(spans))
	buf := make([]byte, copyBufferSize)
	for hashed := 0; hashed < len(spans); {
		select {
		case idx := <-done:
			ready[idx] = true
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		for hashed < len(spans) && ready[hashed] {
			sp := spans[hashed]
			if _, err := io.CopyBuffer(j.h, io.NewSectionReader(j.f, sp.start, sp.end-sp.start), buf); err != nil {
				return err
			}
			j.valid = sp.end
			hashed++
			if time.Since(j.meta) >= metaInterval {
				_ = saveMeta(j.dest, partialMeta{Digest: j.d.String, Size: j.size, Valid: j.valid})
				j.meta = time.Now()
			}
		}
	}
	return nil
}

// fetchSpan writes one chunk, resuming inside it after a broken stream.
// resp, when given, is an already-open response for the chunk's start.
func (j *job) fetchSpan(ctx context.Context, sp span, resp *http.Response, wd *watchdog) error {
	off, stale := sp.start, 0
	for {
		if resp == nil {
			var err error
			if resp, wd, err = j.request(ctx, off, sp.end-1); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusPartialContent {
				resp.Body.Close()
				wd.stop()
				return errors.New("registry stopped honouring range requests")
			}
			if s, _, ok := parseContentRange(resp.Header.Get("Content-Range")); !ok || s != off {
				resp.Body.Close()
				wd.stop()
				return fmt.Errorf("registry answered a range request for byte %d with Content-Range %q", off, resp.Header.Get("Content-Range"))
			}
		}
		n, err := copyAt(j.f, off, wd.reader(io.LimitReader(resp.Body, sp.end-off)), nil, j.prog)
		resp.Body.Close()
		wd.stop()
		err = wd.explain(err)
		resp = nil
		off += n
		if err == nil && off == sp.end {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("chunk ended at byte %d of %d: %w", off, sp.end, io.ErrUnexpectedEOF)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !resumable(err) {
			return err
		}
		if n > 0 {
			stale = 0
		}
		if stale++; stale > j.o.Resumes {
			return err
		}
		if err := Sleep(ctx, j.o.Retry.Backoff(stale)); err != nil {
			return err
		}
	}
}
