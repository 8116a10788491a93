package capi

import (
	"context"
	"sync"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/events"
	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/transfer"
)

// Long calls carry an "operation_id" chosen by the caller, so that another
// thread can read their progress (OperationProgress) and cancel them
// (CancelOperation) while the calling thread is blocked in Go. Polling keeps
// Go from ever calling back into the caller's runtime.
type operation struct {
	ctx      context.Context // ends with the call
	cancel   context.CancelFunc
	progress *transfer.Progress
	logs     *logs.Recorder // nil when the call asked for no logs
	events   *events.Sink   // nil when the call asked for no events
}

var (
	opsMu sync.Mutex
	ops   = map[string]*operation{}
	// canceledEarly remembers cancellations that arrived before their call
	// started (the caller's cancel raced its own call), so they still apply.
	canceledEarly = map[string]time.Time{}
)

// earlyCancelTTL bounds how long an unmatched cancellation is remembered.
const earlyCancelTTL = time.Minute

func startOperation(ctx context.Context, id string, rec *logs.Recorder, sink *events.Sink) (context.Context, func()) {
	if id == "" {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &transfer.Progress{}
	ctx = transfer.WithProgress(ctx, p)
	opsMu.Lock()
	ops[id] = &operation{ctx: ctx, cancel: cancel, progress: p, logs: rec, events: sink}
	if _, ok := canceledEarly[id]; ok {
		delete(canceledEarly, id)
		cancel()
	}
	opsMu.Unlock()
	return ctx, func() {
		opsMu.Lock()
		delete(ops, id)
		opsMu.Unlock()
		cancel()
	}
}

func cancelOperation(id string) bool {
	opsMu.Lock()
	defer opsMu.Unlock()
	if op, ok := ops[id]; ok {
		op.cancel()
		return true
	}
	now := time.Now()
	for k, t := range canceledEarly {
		if now.Sub(t) > earlyCancelTTL {
			delete(canceledEarly, k)
		}
	}
	canceledEarly[id] = now
	return false
}

func lookup(id string) (*operation, bool) {
	opsMu.Lock()
	defer opsMu.Unlock()
	op, ok := ops[id]
	return op, ok
}

// progressOf reads operation id's counters and takes the log records and
// events it made since the last read (those left at its end go in its
// envelope).
func progressOf(id string) *abi.OperationResult {
	op, ok := lookup(id)
	if !ok {
		return &abi.OperationResult{Blobs: []abi.BlobProgress{}}
	}
	r := wireProgress(op.progress.Snapshot())
	r.Running, r.Logs = true, op.logs.Drain()
	r.Events, r.EventsDropped = op.events.Drain()
	return &r
}

// maxProgressWait bounds how long one progress read may wait: the caller's
// thread is in Go meanwhile, and a Ctrl-C there waits for it.
var maxProgressWait = time.Second

// waitForBlobs waits until operation id has more than after blobs done, it
// ends, wait passes or ctx ends, whichever is first.
func waitForBlobs(ctx context.Context, id string, after int64, wait time.Duration) {
	op, ok := lookup(id)
	if !ok || wait <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, min(wait, maxProgressWait))
	defer cancel()
	defer context.AfterFunc(op.ctx, cancel)()
	op.progress.WaitBlobs(ctx, after)
}
