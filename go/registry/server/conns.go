package server

import (
	"net"
	"net/http"
	"sync"
)

// freshConns tracks connections that have not yet carried a request.
// http.Server.Shutdown waits up to 5 s for those before counting them idle,
// and Go clients leave such connections behind routinely (a dial that lost
// the race to a connection freed meanwhile), so without closing them a stop
// would take 5 s.
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (f *freshConns) track(c net.Conn, state http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state == http.StateNew {
		if f.conns == nil {
			f.conns = make(map[net.Conn]struct{})
		}
		f.conns[c] = struct{}{}
		return
	}
	delete(f.conns, c)
}

func (f *freshConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
		delete(f.conns, c)
	}
}
