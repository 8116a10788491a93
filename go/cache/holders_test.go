package cache

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

func TestHoldersAreKeptNewestFirstAndBounded(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := digestOf([]byte("weights"))
	if got := c.Holders(d); got != nil {
		t.Fatalf("a new cache knows holders %q", got)
	}
	c.NoteHolder("reg.example/a", d)
	c.NoteHolder("reg.example/b", d, "not-a-digest")
	c.NoteHolder("reg.example/a", d) // known: left where it is
	if got := c.Holders(d); !slices.Equal(got, []string{"reg.example/b", "reg.example/a"}) {
		t.Fatalf("holders %q", got)
	}
	for i := range 2 * maxHolders {
		c.NoteHolder(fmt.Sprintf("reg.example/r%d", i), d)
	}
	if got := c.Holders(d); len(got) != maxHolders || got[0] != fmt.Sprintf("reg.example/r%d", 2*maxHolders-1) {
		t.Fatalf("after many pushes: %q", got)
	}
	if c.Holders("../../etc/passwd") != nil {
		t.Fatal("a path was read as a digest")
	}
}

func TestUploadsAreRememberedUntilForgotten(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	u := c.Uploads()
	d := digestOf([]byte("shard"))
	if u.Load("reg.example/m", d) != "" {
		t.Fatal("an upload remembered before any was saved")
	}
	u.Save("reg.example/m", d, "http://reg.example/v2/m/blobs/uploads/1?_state=x")
	if got := u.Load("reg.example/m", d); got != "http://reg.example/v2/m/blobs/uploads/1?_state=x" {
		t.Fatalf("loaded %q", got)
	}
	if u.Load("reg.example/other", d) != "" {
		t.Fatal("another repository's upload was offered")
	}
	u.Forget("reg.example/m", d)
	if u.Load("reg.example/m", d) != "" {
		t.Fatal("a forgotten upload came back")
	}
	// A record older than registries keep sessions is not offered.
	u.Save("reg.example/m", d, "http://reg.example/old")
	b := uploadRecord{Repository: "reg.example/m", Digest: d, Location: "http://reg.example/old", SavedNS: time.Now().Add(-UploadTTL - time.Hour).UnixNano()}
	writeJSON(t, u.path("reg.example/m", d), b)
	if u.Load("reg.example/m", d) != "" {
		t.Fatal("an expired upload was offered")
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
