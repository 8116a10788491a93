package pullmodel_test

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/pullmodel"
	"github.com/oci-client/liboci/transfer"
)

const shard1, shard2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"

// withProgress pulls ref reporting to a Progress of its own, and returns what
// that Progress says of each file at the end.
func withProgress(t *testing.T, ref string, o pullmodel.Options) map[string]transfer.BlobSnapshot {
	t.Helper()
	prog := &transfer.Progress{}
	if _, err := pullmodel.Pull(transfer.WithProgress(testCtx(t), prog), client(t), ref, o); err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	byLabel := map[string]transfer.BlobSnapshot{}
	for _, b := range prog.Snapshot().Blobs {
		if _, twice := byLabel[b.Label]; twice {
			t.Errorf("%s is reported twice", b.Label)
		}
		byLabel[b.Label] = b
	}
	return byLabel
}

// A file already in the cache is reported, as verified and in place, as
// soon as the pull finds it: a loader reads it while the rest downloads.
func TestACachedFileIsReportedInPlace(t *testing.T) {
	t.Parallel()
	_, ref, _, root := setup(t, sampleModel(t)...)
	withProgress(t, ref, pullmodel.Options{CacheDir: root, Allow: []string{shard1}})
	got := withProgress(t, ref, pullmodel.Options{CacheDir: root})
	cached := got[shard1]
	if !cached.Done || !cached.Present || cached.BytesTotal != 0 || cached.Path == "" {
		t.Fatalf("the cached shard: %+v, want done and present, no bytes, with its path", cached)
	}
	if data, err := os.ReadFile(cached.Path); err != nil || len(data) != 3<<20 || data[0] != 'a' {
		t.Errorf("%s does not hold the shard (%d bytes, %v)", cached.Path, len(data), err)
	}
	fetched := got[shard2]
	if !fetched.Done || fetched.Present || fetched.BytesDone != 2<<20 || fetched.Path == "" {
		t.Errorf("the downloaded shard: %+v, want done, not present, 2 MiB", fetched)
	}
}

// Pulls of one model at once (separate processes, each with its cache
// handle) fetch each file once, and each pull hears of every file, the
// ones another pull fetched included, with where it is.
func TestEveryPullHearsOfTheFilesOthersFetched(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, sampleModel(t)...)
	c := count(reg)
	c.delay = 50e6 // 50 ms a blob request, so the pulls overlap
	reports := make([]map[string]transfer.BlobSnapshot, 3)
	var wg sync.WaitGroup
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i] = withProgress(t, ref, pullmodel.Options{CacheDir: root})
		}()
	}
	wg.Wait()
	for _, label := range []string{"config.json", shard1, shard2, "tokenizer"} {
		downloaded := 0
		for i, r := range reports {
			b, ok := r[label]
			if !ok || !b.Done || b.Path == "" {
				t.Errorf("pull %d: %s is %+v, want done with its path", i, label, b)
			}
			if !b.Present {
				downloaded++
			}
		}
		if downloaded != 1 {
			t.Errorf("%s: downloaded by %d pulls, want 1", label, downloaded)
		}
	}
}

// Each blob is trusted in the cache (its state recorded) as soon as it is in
// place, while the pull still downloads the others: a process waiting on this
// one's lease then serves it as it is instead of hashing it again.
func TestABlobIsTrustedAsSoonAsItIsInPlace(t *testing.T) {
	t.Parallel()
	first, second := bytes.Repeat([]byte("a"), 1<<20), bytes.Repeat([]byte("b"), 1<<20)
	reg, ref, _, root := setup(t,
		layer{mtWeight, shard1, first}, layer{mtWeight, shard2, second})
	ch, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	blob := ch.BlobPath(digestOf(first))
	reg.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if testutil.IsBlobGet(r) && strings.HasSuffix(r.URL.Path, digestOf(second)) {
				// Concurrency 1: the first shard is in; the second waits
				// (up to 5 s) for it to be trusted, failing the test if not.
				testutil.WaitFor(t, 5*time.Second, "the first shard to be trusted while the second downloads",
					func() bool { return cache.TrustOf(blob) == cache.ThisBoot })
			}
			next.ServeHTTP(w, r)
		})
	})
	pull(t, ref, pullmodel.Options{CacheDir: root, Concurrency: 1})
}
