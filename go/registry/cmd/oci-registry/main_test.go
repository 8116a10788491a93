package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestBadUsageExits2WithOneLine(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"--root", t.TempDir(), "extra"}, {"--addr"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, strings.NewReader(""), &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if lines := strings.Count(stderr.String(), "\n"); lines != 1 || stdout.Len() != 0 {
			t.Errorf("%v: stderr %q (want one line), stdout %q", args, stderr.String(), stdout.String())
		}
	}
}

func TestStartFailureExits1WithOneLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"--root", t.TempDir(), "--addr", "0.0.0.0:0"}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), "--allow-remote") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Fatalf("stdout %q", stdout.String())
	}
}

func TestPrintsAddressAndExitsWhenStdinCloses(t *testing.T) {
	root := t.TempDir()
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	var stderr bytes.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{"--root", root, "--addr", "127.0.0.1:0", "--exit-with-stdin"}, stdinR, stdoutW, &stderr)
		stdoutW.Close()
	}()

	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the address line: %v (stderr %q)", err, stderr.String())
	}
	var ready map[string]any
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	for _, key := range []string{"address", "url", "root", "pid", "proxy"} {
		if _, ok := ready[key]; !ok {
			t.Errorf("line %q lacks %q", line, key)
		}
	}
	if ready["root"] != root || ready["pid"] != float64(os.Getpid()) || ready["url"] != "http://"+ready["address"].(string) {
		t.Errorf("line %q", line)
	}
	resp, err := http.Get(ready["url"].(string) + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %s", resp.Status)
	}

	stdinW.Close()
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("exit %d after stdin closed; stderr %q", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after stdin closed")
	}
	if rest, _ := io.ReadAll(stdoutR); len(rest) != 0 {
		t.Errorf("more on stdout after the address line: %q", rest)
	}
}
