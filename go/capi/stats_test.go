package capi

import (
	"context"
	"strings"
	"sync"
	"testing"
)

func stats(t *testing.T) map[string]any {
	t.Helper()
	return wantSuccess(t, RuntimeStats(context.Background(), request(t, map[string]any{}))).Result
}

func TestRuntimeStatsCountsGoroutinesAndOperations(t *testing.T) {
	before := stats(t)
	_, end := startOperation(context.Background(), opID(t), nil, nil)
	// Many: goroutines other tests left (idle connections closing) may end meanwhile.
	const waiting = 1000
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range waiting {
		wg.Add(1)
		go func() { <-release; wg.Done() }()
	}
	during := stats(t)
	if during["operations"].(float64) != before["operations"].(float64)+1 {
		t.Errorf("operations during a call: %v, before: %v", during["operations"], before["operations"])
	}
	if during["goroutines"].(float64) < before["goroutines"].(float64)+waiting*0.9 {
		t.Errorf("goroutines with %d more waiting: %v, before: %v", waiting, during["goroutines"], before["goroutines"])
	}
	if during["heap_bytes"].(float64) <= 0 || during["sys_bytes"].(float64) < during["heap_bytes"].(float64) {
		t.Errorf("memory: %v", during)
	}
	dump := wantSuccess(t, RuntimeStats(context.Background(), request(t, map[string]any{"stacks": true}))).Result
	if !strings.Contains(dump["stacks"].(string), "TestRuntimeStatsCountsGoroutinesAndOperations.func") {
		t.Errorf("stacks lack the waiting goroutines: %.500s", dump["stacks"])
	}
	close(release)
	wg.Wait()
	end()
	if after := stats(t); after["operations"] != before["operations"] {
		t.Errorf("operations after the call ended: %v, before: %v", after["operations"], before["operations"])
	}
}
