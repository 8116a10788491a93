package capi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/oci"
)

// opID returns an operation id no other test uses: the registry of
// running operations is process-wide.
var opSeq atomic.Int64

func opID(t *testing.T) string {
	return fmt.Sprintf("%s-%d", t.Name(), opSeq.Add(1))
}

func progress(t *testing.T, id string) map[string]any {
	t.Helper()
	return wantSuccess(t, OperationProgress(context.Background(), request(t, map[string]any{"id": id}))).Result
}

func cancelOp(t *testing.T, id string) map[string]any {
	t.Helper()
	return wantSuccess(t, CancelOperation(context.Background(), request(t, map[string]any{"id": id}))).Result
}

// stallingBlob serves blob GETs with data, but stops after the first
// `first` bytes until release is closed (or the client goes away).
func stallingBlob(data []byte, first int, release <-chan struct{}) testutil.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !testutil.IsBlobGet(r) {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:first])
			w.(http.Flusher).Flush()
			select {
			case <-release:
				w.Write(data[first:])
			case <-r.Context().Done():
			}
		})
	}
}

// stalledPull starts PullBlob with operation id on a registry that sends
// the first 2 MiB of a 3 MiB blob and then waits for release.
func stalledPull(t *testing.T, id string) (dest string, data []byte, release chan struct{}, result <-chan []byte) {
	t.Helper()
	reg := testutil.NewRegistry(t)
	// Progress counts bytes as they arrive; the stall comes after 2 MiB.
	data = testutil.RandomBytes(t, 3<<20+100)
	digest := testutil.PushBlob(t, reg.Ref("app", ""), data)
	release = make(chan struct{})
	reg.Use(stallingBlob(data, 2<<20, release))
	dest = filepath.Join(t.TempDir(), "blob")
	out := make(chan []byte, 1)
	go func() {
		out <- PullBlob(context.Background(), request(t, map[string]any{
			"reference": reg.Ref("app", ""), "env": tempEnv(t), "digest": digest, "path": dest,
			"size": len(data), "operation_id": id, "timeout_ms": 30000,
		}))
	}()
	return dest, data, release, out
}

func num(m map[string]any, k string) int64 {
	f, _ := m[k].(float64)
	return int64(f)
}

func TestOperationProgressOfRunningCall(t *testing.T) {
	t.Parallel()
	id := opID(t)
	dest, data, release, out := stalledPull(t, id)
	var p map[string]any
	waitFor(t, "progress of the running pull", func() bool {
		p = progress(t, id)
		return num(p, "bytes_done") == 2<<20
	})
	if p["running"] != true || num(p, "bytes_total") != int64(len(data)) || num(p, "blobs_total") != 1 || num(p, "blobs_done") != 0 {
		t.Errorf("progress %v", p)
	}
	close(release)
	var res []byte
	select {
	case res = <-out:
	case <-time.After(20 * time.Second):
		t.Fatal("the pull did not finish")
	}
	wantSuccess(t, res)
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Error("content differs")
	}
	// Finished: the id is forgotten.
	p = progress(t, id)
	if p["running"] != false || num(p, "bytes_done") != 0 {
		t.Errorf("progress after the call %v", p)
	}
}

func waitingProgress(t *testing.T, id string, after int64) <-chan map[string]any {
	t.Helper()
	out := make(chan map[string]any, 1)
	req := request(t, map[string]any{"id": id, "wait_ms": 60000, "blobs_after": after})
	go func() {
		var env struct {
			OK     bool           `json:"ok"`
			Result map[string]any `json:"result"`
		}
		if err := json.Unmarshal(OperationProgress(context.Background(), req), &env); err != nil || !env.OK {
			out <- nil
			return
		}
		out <- env.Result
	}()
	return out
}

// Not parallel: it lengthens the longest wait for every caller.
func TestProgressWaitsForTheNextBlob(t *testing.T) {
	defer func(w time.Duration) { maxProgressWait = w }(maxProgressWait)
	maxProgressWait = time.Minute
	id := opID(t)
	_, _, release, out := stalledPull(t, id)
	waitFor(t, "the pull to stall", func() bool { return num(progress(t, id), "bytes_done") == 2<<20 })
	waiting := waitingProgress(t, id, 0)
	select {
	case p := <-waiting:
		t.Fatalf("answered before any blob finished: %v", p)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case p := <-waiting:
		if p == nil || (p["running"] == true && num(p, "blobs_done") != 1) {
			t.Fatalf("answered %v", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not end when the blob finished")
	}
	wantSuccess(t, <-out)
}

func TestProgressWaitEndsWithTheCall(t *testing.T) {
	defer func(w time.Duration) { maxProgressWait = w }(maxProgressWait)
	maxProgressWait = time.Minute
	id := opID(t)
	_, _, release, out := stalledPull(t, id)
	defer close(release)
	waitFor(t, "the pull to stall", func() bool { return num(progress(t, id), "bytes_done") == 2<<20 })
	waiting := waitingProgress(t, id, 0)
	cancelOp(t, id)
	select {
	case p := <-waiting:
		if p == nil || num(p, "blobs_done") != 0 {
			t.Fatalf("answered %v", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not end with the call")
	}
	<-out
}

func TestCancelOperationOfRunningCall(t *testing.T) {
	t.Parallel()
	id := opID(t)
	dest, data, release, out := stalledPull(t, id)
	defer close(release)
	waitFor(t, "the pull to start moving bytes", func() bool { return num(progress(t, id), "bytes_done") > 0 })
	start := time.Now()
	if r := cancelOp(t, id); r["running"] != true {
		t.Errorf("CancelOperation of a running call: %v", r)
	}
	var res []byte
	select {
	case res = <-out:
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled pull is still running")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v to return after CancelOperation", el)
	}
	wantFailure(t, res, oci.CodeCanceled)
	if _, err := os.Stat(dest); err == nil {
		t.Error("a cancelled pull wrote the destination")
	}
	// The bytes received are kept for the next call.
	if got, err := os.ReadFile(dest + ".incomplete"); err != nil || len(got) == 0 || !bytes.Equal(got, data[:len(got)]) {
		t.Errorf("kept partial: %d bytes, %v", len(got), err)
	}
	if p := progress(t, id); p["running"] != false {
		t.Errorf("progress after the cancelled call %v", p)
	}
}

func TestCancelOperationOfWaitingCall(t *testing.T) {
	t.Parallel()
	id := opID(t)
	started := make(chan struct{})
	out := make(chan []byte, 1)
	go func() {
		out <- Call(context.Background(), "Echo", request(t, map[string]any{"operation_id": id}), func(ctx context.Context, _ echoReq) (echoResp, error) {
			close(started)
			select {
			case <-ctx.Done():
				return echoResp{}, ctx.Err()
			case <-time.After(20 * time.Second):
				return echoResp{Echo: "never cancelled"}, nil
			}
		})
	}()
	<-started
	if r := cancelOp(t, id); r["running"] != true {
		t.Errorf("CancelOperation: %v", r)
	}
	select {
	case res := <-out:
		wantFailure(t, res, oci.CodeCanceled)
	case <-time.After(5 * time.Second):
		t.Fatal("not cancelled")
	}
}

func TestCancelBeforeTheCallStarts(t *testing.T) {
	t.Parallel()
	id := opID(t)
	if r := cancelOp(t, id); r["running"] != false {
		t.Errorf("CancelOperation of a call not yet started: %v", r)
	}
	ran := false
	res := Call(context.Background(), "Echo", request(t, map[string]any{"operation_id": id, "value": "x"}), func(ctx context.Context, r echoReq) (echoResp, error) {
		ran = true
		if err := ctx.Err(); err != nil {
			return echoResp{}, err
		}
		return echoResp{Echo: r.Value}, nil
	})
	wantFailure(t, res, oci.CodeCanceled)
	if !ran {
		t.Error("fn never ran")
	}
	// The early cancellation is used up: the next call with the id runs.
	res = Call(context.Background(), "Echo", request(t, map[string]any{"operation_id": id, "value": "x"}), func(ctx context.Context, r echoReq) (echoResp, error) {
		return echoResp{Echo: r.Value}, ctx.Err()
	})
	wantSuccess(t, res)
}

func TestCancelBeforePullStarts(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := testutil.RandomBytes(t, 1000)
	digest := testutil.PushBlob(t, reg.Ref("app", ""), data)
	id := opID(t)
	cancelOp(t, id)
	dest := filepath.Join(t.TempDir(), "blob")
	start := time.Now()
	res := PullBlob(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ""), "env": tempEnv(t), "digest": digest, "path": dest, "operation_id": id,
	}))
	wantFailure(t, res, oci.CodeCanceled)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v", el)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Error("a cancelled pull wrote the destination")
	}
}

func TestOperationUnknownID(t *testing.T) {
	t.Parallel()
	p := progress(t, opID(t))
	want := map[string]any{"running": false, "bytes_done": 0.0, "bytes_total": 0.0, "blobs_done": 0.0, "blobs_total": 0.0}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("progress[%s] = %v, want %v (%v)", k, p[k], v, p)
		}
	}
	if r := cancelOp(t, opID(t)); r["running"] != false {
		t.Errorf("CancelOperation of an unknown id: %v", r)
	}
	// Bad input is still an envelope.
	wantFailure(t, OperationProgress(context.Background(), []byte(`{"id":`)), oci.CodeInvalidArgument)
	wantFailure(t, CancelOperation(context.Background(), []byte(`[]`)), oci.CodeInvalidArgument)
}

// Calls without an operation id are never registered, so cancelling the
// empty id touches none of them.
func TestCancelEmptyIDCancelsNothing(t *testing.T) {
	t.Parallel()
	if r := cancelOp(t, ""); r["running"] != false {
		t.Errorf("%v", r)
	}
	res := Call(context.Background(), "Echo", []byte(`{"value":"v"}`), func(ctx context.Context, r echoReq) (echoResp, error) {
		return echoResp{Echo: r.Value}, ctx.Err()
	})
	wantSuccess(t, res)
	if p := progress(t, ""); p["running"] != false {
		t.Errorf("progress of the empty id: %v", p)
	}
}

func TestEarlyCancelExpires(t *testing.T) {
	t.Parallel()
	id := opID(t)
	opsMu.Lock()
	canceledEarly[id] = time.Now().Add(-2 * earlyCancelTTL)
	opsMu.Unlock()
	cancelOperation(opID(t)) // prunes stale entries
	opsMu.Lock()
	_, stale := canceledEarly[id]
	opsMu.Unlock()
	if stale {
		t.Fatal("a cancellation older than earlyCancelTTL is still remembered")
	}
	res := Call(context.Background(), "Echo", request(t, map[string]any{"operation_id": id}), func(ctx context.Context, _ echoReq) (echoResp, error) {
		return echoResp{}, ctx.Err()
	})
	wantSuccess(t, res)
}

func TestOperationTimeoutStillCountsAsTimeout(t *testing.T) {
	t.Parallel()
	id := opID(t)
	res := Call(context.Background(), "Echo", request(t, map[string]any{"operation_id": id, "timeout_ms": 50}), func(ctx context.Context, _ echoReq) (echoResp, error) {
		<-ctx.Done()
		return echoResp{}, ctx.Err()
	})
	wantFailure(t, res, oci.CodeTimeout)
	if p := progress(t, id); p["running"] != false {
		t.Errorf("progress after the call %v", p)
	}
}

func TestPullBlobsProgressCountsBlobs(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	a, b := testutil.RandomBytes(t, 1500), testutil.RandomBytes(t, 2500)
	da, db := testutil.PushBlob(t, reg.Ref("app", ""), a), testutil.PushBlob(t, reg.Ref("app", ""), b)
	release := make(chan struct{})
	stall := stallingBlob(b, 100, release)
	reg.Use(func(next http.Handler) http.Handler {
		stalled := stall(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, db) {
				stalled.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	id := opID(t)
	dir := t.TempDir()
	out := make(chan []byte, 1)
	go func() {
		// b's size is not given: it counts once the registry announces it.
		out <- PullBlobs(context.Background(), request(t, map[string]any{
			"reference": reg.Ref("app", ""), "env": tempEnv(t), "operation_id": id, "concurrency": 1, "timeout_ms": 30000,
			"blobs": []map[string]any{{"digest": da, "path": filepath.Join(dir, "a"), "size": len(a)}, {"digest": db, "path": filepath.Join(dir, "b")}},
		}))
	}()
	var p map[string]any
	// Progress counts bytes as they arrive: all of a, and the 100 bytes of b
	// sent before the stall.
	waitFor(t, "the first blob, the second's size and its first bytes", func() bool {
		p = progress(t, id)
		return num(p, "blobs_done") == 1 && num(p, "bytes_total") == int64(len(a)+len(b)) && num(p, "bytes_done") == int64(len(a)+100)
	})
	if p["running"] != true || num(p, "blobs_total") != 2 {
		t.Errorf("progress %v", p)
	}
	// The finished blob names its file, so a reader may open it now; the
	// stalled one names none.
	entries, _ := p["blobs"].([]any)
	if len(entries) != 2 {
		t.Fatalf("progress entries %v", p["blobs"])
	}
	first, second := entries[0].(map[string]any), entries[1].(map[string]any)
	if first["done"] != true || first["path"] != filepath.Join(dir, "a") {
		t.Errorf("finished blob's entry %v", first)
	}
	if second["done"] != false || second["path"] != "" {
		t.Errorf("stalled blob's entry %v", second)
	}
	close(release)
	d := wantSuccess(t, <-out)
	if blobs, _ := d.Result["blobs"].([]any); len(blobs) != 2 {
		t.Fatalf("result %v", d.Result)
	}
	for name, want := range map[string][]byte{"a": a, "b": b} {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, want) {
			t.Errorf("%s differs", name)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !testutil.WaitFor(t, 15*time.Second, what, cond) {
		t.FailNow()
	}
}
