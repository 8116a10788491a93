// Command oci-registry runs a CNCF distribution registry with its data in a
// local directory, for oci-client's `serve` command and its demo.
//
// Once listening it prints one line of JSON to stdout,
//
//	{"address":"127.0.0.1:PORT","url":"http://127.0.0.1:PORT","root":"...","pid":N,"proxy":"..."}
//
// and serves until SIGTERM or SIGINT (or, with --exit-with-stdin, until its
// stdin closes, so that a parent that dies takes the registry with it).
// Exit status: 0 after a stop, 1 when it cannot start, 2 for bad usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/oci-client/liboci/registry/server"
)

const (
	rootEnv          = "OCI_CLIENT_REGISTRY_ROOT"
	proxyUsernameEnv = "OCI_REGISTRY_PROXY_USERNAME"
	proxyPasswordEnv = "OCI_REGISTRY_PROXY_PASSWORD"
	shutdownTimeout  = 5 * time.Second
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

type options struct {
	cfg           server.Config
	exitWithStdin bool
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "oci-registry: %v (see --help)\n", err)
		return 2
	}

	srv, err := server.Start(context.Background(), opts.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "oci-registry: %v\n", err)
		return 1
	}

	// Notify before printing the address: a parent that signals as soon as
	// it has read the line must not kill us with the default action.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	stdinClosed := make(chan struct{})
	if opts.exitWithStdin {
		go func() {
			_, _ = io.Copy(io.Discard, stdin)
			close(stdinClosed)
		}()
	}

	if err := printReady(stdout, srv); err != nil {
		fmt.Fprintf(stderr, "oci-registry: writing the address: %v\n", err)
		shutdown(srv, stderr)
		return 1
	}

	served := make(chan error, 1)
	go func() { served <- srv.Wait() }()
	select {
	case <-signals:
	case <-stdinClosed:
	case err := <-served:
		fmt.Fprintf(stderr, "oci-registry: %v\n", err)
		shutdown(srv, stderr)
		return 1
	}
	shutdown(srv, stderr)
	return 0
}

func shutdown(srv *server.Server, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintf(stderr, "oci-registry: %v\n", err)
	}
}

func parseFlags(args []string, stdout io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("oci-registry", flag.ContinueOnError)
	// The flag package's own error report is several lines with the usage;
	// run prints one line instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.cfg.Root, "root", "", "storage directory (default $"+rootEnv+", else ~/.local/share/oci-client/registry)")
	fs.StringVar(&o.cfg.Addr, "addr", server.DefaultAddr, "host:port to listen on; port 0 picks a free port")
	fs.BoolVar(&o.cfg.AllowRemote, "allow-remote", false, "allow a bind address other than loopback (the registry has no authentication)")
	fs.StringVar(&o.cfg.ProxyURL, "proxy", "", "be a pull-through cache of this registry URL")
	fs.StringVar(&o.cfg.ProxyUsername, "proxy-username", "", "upstream username (default $"+proxyUsernameEnv+")")
	fs.StringVar(&o.cfg.ProxyPassword, "proxy-password", "", "upstream password; prefer $"+proxyPasswordEnv+", which ps does not show")
	fs.StringVar(&o.cfg.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (needs --tls-key)")
	fs.StringVar(&o.cfg.TLSKey, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&o.cfg.LogLevel, "log-level", "warn", "error, warn, info or debug (info and debug log each request)")
	fs.BoolVar(&o.exitWithStdin, "exit-with-stdin", false, "exit when stdin reaches end of file")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: oci-registry [flags]")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// The variables count only for a cache: set in a shell for one, they
	// must not make a plain registry refuse to start.
	if o.cfg.ProxyURL != "" {
		if o.cfg.ProxyUsername == "" {
			o.cfg.ProxyUsername = os.Getenv(proxyUsernameEnv)
		}
		if o.cfg.ProxyPassword == "" {
			o.cfg.ProxyPassword = os.Getenv(proxyPasswordEnv)
		}
	}
	if o.cfg.Root == "" {
		root, err := defaultRoot()
		if err != nil {
			return o, err
		}
		o.cfg.Root = root
	}
	return o, nil
}

func defaultRoot() (string, error) {
	if r := os.Getenv(rootEnv); r != "" {
		return r, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no --root given, $%s unset and no home directory: %w", rootEnv, err)
	}
	return filepath.Join(home, ".local", "share", "oci-client", "registry"), nil
}

type readyLine struct {
	Address string `json:"address"`
	URL     string `json:"url"`
	Root    string `json:"root"`
	PID     int    `json:"pid"`
	Proxy   string `json:"proxy"`
}

func printReady(w io.Writer, srv *server.Server) error {
	b, err := json.Marshal(readyLine{
		Address: srv.Addr(),
		URL:     srv.URL(),
		Root:    srv.Root(),
		PID:     os.Getpid(),
		Proxy:   srv.ProxyURL(),
	})
	if err != nil {
		return err
	}
	// os.Stdout is unbuffered: the line has reached the pipe when Write returns.
	_, err = w.Write(append(b, '\n'))
	return err
}
