package netconf

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
)

// Small reads (TLS records) come out of the buffer, large ones (plain HTTP
// bodies) straight from the socket; either way the bytes are the stream.
func TestBufferedConnKeepsTheStream(t *testing.T) {
	t.Parallel()
	data := make([]byte, 4*socketReadBuffer+123)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 40_000)
			if _, err := server.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
	}()
	c := &bufferedConn{Conn: client, r: bufio.NewReaderSize(client, socketReadBuffer)}
	var got bytes.Buffer
	for _, size := range []int{5, 16 << 10, socketReadBuffer, 2 * socketReadBuffer, 1} {
		buf := make([]byte, size)
		n, err := io.ReadFull(c, buf)
		if err != nil {
			t.Fatalf("read of %d: %d, %v", size, n, err)
		}
		got.Write(buf[:n])
	}
	rest, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	got.Write(rest)
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read %d bytes, not the %d sent", got.Len(), len(data))
	}
}
