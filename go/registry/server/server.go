package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	gorillahandlers "github.com/gorilla/handlers"

	// The one storage driver: the registry keeps its data in a local directory.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// Server is a running registry.
type Server struct {
	root   string
	proxy  string
	scheme string
	ln     net.Listener
	http   *http.Server
	app    *handlers.App
	files  *blobFiles // nil for a pull-through cache
	fresh  freshConns

	done     chan struct{}
	serveErr error

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start opens the storage under cfg.Root, listens on cfg.Addr and serves in
// the background until Shutdown. ctx bounds the start only; its values reach
// the registry's own background work (upload purging, cache expiry).
//
// distribution logs through the process-global logrus: the last Start's
// LogLevel applies to every Server in the process.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	c, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Root, 0o700); err != nil {
		return nil, fmt.Errorf("opening storage %q: %w", c.Root, err)
	}
	secret, err := loadOrCreateSecret(c.Root)
	if err != nil {
		return nil, fmt.Errorf("opening storage %q: %w", c.Root, err)
	}
	var tlsConf *tls.Config
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("loading the TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			// HTTP/1.1 only: over loopback HTTP/2 moved about half of what
			// HTTP/1.1 did for large blobs (shared/NOTES.md), and large blobs
			// are what this registry serves.
			NextProtos: []string{"http/1.1"},
		}
	}

	configureLogging(c.LogLevel)
	var up *upstream
	if c.ProxyURL != "" {
		if up, err = addUpstream(c); err != nil {
			return nil, err
		}
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}

	app, err := newApp(context.WithoutCancel(ctx), distributionConfig(c, secret))
	if err != nil {
		ln.Close()
		return nil, err
	}
	var handler http.Handler = app
	var files *blobFiles
	if c.ProxyURL == "" {
		files = newBlobFiles(app, c.Root)
		handler = files
	}
	if accessLogged(c.LogLevel) {
		// stderr: stdout belongs to the command's one line of JSON.
		handler = gorillahandlers.CombinedLoggingHandler(os.Stderr, handler)
	}

	s := &Server{
		root:   c.Root,
		proxy:  c.ProxyURL,
		scheme: "http",
		ln:     ln,
		app:    app,
		files:  files,
		done:   make(chan struct{}),
		http: &http.Server{
			Handler: handler,
			// No read or write timeout: a multi-GB blob may take minutes either way.
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
	}
	s.http.ConnState = s.fresh.track
	if up != nil {
		s.http.BaseContext = func(net.Listener) context.Context {
			return context.WithValue(context.Background(), upstreamKey{}, up)
		}
	}
	serveOn := ln
	if tlsConf != nil {
		s.scheme = "https"
		serveOn = tls.NewListener(ln, tlsConf)
	}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(serveOn); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = fmt.Errorf("serving: %w", err)
		}
	}()
	return s, nil
}

// newApp turns the panics with which distribution reports a bad configuration
// into an error.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("configuring the registry: %v", p)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// Addr is the address the registry listens on, host:port with the real port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the registry's base URL, e.g. http://127.0.0.1:5000.
func (s *Server) URL() string { return s.scheme + "://" + s.Addr() }

// Root is the absolute storage directory.
func (s *Server) Root() string { return s.root }

// ProxyURL is the upstream of a pull-through cache, or "".
func (s *Server) ProxyURL() string { return s.proxy }

// Shutdown stops accepting connections and waits for the open ones to finish
// until ctx ends, then cuts the rest. Safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		stopped := make(chan error, 1)
		go func() { stopped <- s.http.Shutdown(ctx) }()
		tick := time.NewTicker(20 * time.Millisecond)
		var err error
	waiting:
		for {
			select {
			case err = <-stopped:
				break waiting
			case <-tick.C:
				// A connection that has carried no request yet is given up
				// on: the server is going away.
				s.fresh.closeAll()
			}
		}
		tick.Stop()
		if err != nil {
			err = fmt.Errorf("connections still open at shutdown were cut: %w", err)
			s.http.Close()
		}
		<-s.done
		if appErr := s.app.Shutdown(); appErr != nil {
			err = errors.Join(err, fmt.Errorf("closing the registry: %w", appErr))
		}
		s.shutdownErr = err
	})
	return s.shutdownErr
}

// Wait blocks until the server has stopped serving, and returns why if it was
// not Shutdown.
func (s *Server) Wait() error {
	<-s.done
	return s.serveErr
}
