package pullmodel_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/pullmodel"
	"golang.org/x/sys/unix"
)

func TestPullNamesShardsUnpacksArchivesAndLinksIntoTheCache(t *testing.T) {
	t.Parallel()
	reg, ref, digest, root := setup(t, sampleModel(t)...)

	res := pull(t, ref, pullmodel.Options{CacheDir: root})
	if res.Digest != digest || res.Model.Format != "modelpack" {
		t.Errorf("result %s %s, want %s modelpack", res.Digest, res.Model.Format, digest)
	}
	want := []string{"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "tokenizer"}
	if strings.Join(res.Files, " ") != strings.Join(want, " ") {
		t.Errorf("files %v, want %v", res.Files, want)
	}
	if !strings.HasPrefix(res.Path, filepath.Join(root, "models", reg.Host, "org+model", "snapshots", "sha256-")) {
		t.Errorf("snapshot at %s", res.Path)
	}
	wantFile(t, filepath.Join(res.Path, "config.json"), `{"model_type":"tiny"}`)
	wantFile(t, filepath.Join(res.Path, "model-00001-of-00002.safetensors"), strings.Repeat("a", 3<<20))
	wantFile(t, filepath.Join(res.Path, "model-00002-of-00002.safetensors"), strings.Repeat("b", 2<<20))
	wantFile(t, filepath.Join(res.Path, "tokenizer", "vocab.json"), `{"a":1}`)
	wantFile(t, filepath.Join(res.Path, "tokenizer", "merges.txt"), "a b\n")
	// Links into content-addressed blobs, which the cache may move with it.
	target, err := os.Readlink(filepath.Join(res.Path, "tokenizer", "vocab.json"))
	if err != nil || filepath.IsAbs(target) || !strings.Contains(target, "blobs/sha256/") {
		t.Errorf("vocab.json links to %q (%v)", target, err)
	}
	if res.BlobsDownloaded != 5 { // config blob, 4 layers
		t.Errorf("downloaded %d blobs, want 5", res.BlobsDownloaded)
	}
	// The archive itself is not kept once unpacked.
	if _, err := os.Stat(filepath.Join(root, "blobs", "sha256", strings.TrimPrefix(res.Model.Files[3].Digest, "sha256:"))); !os.IsNotExist(err) {
		t.Errorf("the unpacked archive blob is still there: %v", err)
	}
}

func TestRepeatPullByTagIsOneManifestRequestAndByDigestNone(t *testing.T) {
	t.Parallel()
	reg, ref, digest, root := setup(t, sampleModel(t)...)
	c := count(reg)
	first := pull(t, ref, pullmodel.Options{CacheDir: root})
	c.reset()

	again := pull(t, ref, pullmodel.Options{CacheDir: root})
	if m, b := c.totals(); m != 1 || b != 0 {
		t.Errorf("repeat pull by tag: %d manifest and %d blob requests, want 1 and 0", m, b)
	}
	if again.Path != first.Path || again.BlobsDownloaded != 0 {
		t.Errorf("repeat pull: %s (%d blobs), want %s (0)", again.Path, again.BlobsDownloaded, first.Path)
	}
	reg.Server.Close()
	pinned := pull(t, reg.Ref("org/model", "@"+digest), pullmodel.Options{CacheDir: root})
	if pinned.Path != first.Path {
		t.Errorf("digest pull with the registry gone: %s, want %s", pinned.Path, first.Path)
	}
}

func TestOfflineServesTheCacheAndNamesWhatIsMissing(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, sampleModel(t)...)

	_, err := pullmodel.Pull(testCtx(t), client(t), ref, pullmodel.Options{CacheDir: root, Offline: true})
	wantCode(t, err, oci.CodeNotCached)
	if !strings.Contains(err.Error(), "org/model:v1") {
		t.Errorf("message does not name the reference: %v", err)
	}
	pull(t, ref, pullmodel.Options{CacheDir: root, Allow: []string{"*.json"}})
	c := count(reg)
	res := pull(t, ref, pullmodel.Options{CacheDir: root, Offline: true, Allow: []string{"*.json"}})
	wantFile(t, filepath.Join(res.Path, "config.json"), `{"model_type":"tiny"}`)
	_, err = pullmodel.Pull(testCtx(t), client(t), ref, pullmodel.Options{CacheDir: root, Offline: true})
	wantCode(t, err, oci.CodeNotCached)
	if m, b := c.totals(); m+b != 0 {
		t.Errorf("offline pulls made %d manifest and %d blob requests", m, b)
	}
}

func TestPatternsFetchOnlyTheMatchingLayers(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	ref := reg.Ref("org/model", ":v1")
	layers := sampleModel(t)
	pushModel(t, ref, layers...)
	c := count(reg)
	res := pull(t, ref, pullmodel.Options{CacheDir: cacheDir(t), Allow: []string{"*.json", "tokenizer"}, Ignore: []string{"*.safetensors"}})
	if strings.Join(res.Files, " ") != "config.json tokenizer" {
		t.Errorf("files %v", res.Files)
	}
	for _, l := range layers[1:3] {
		if n := c.blobs[digestOf(l.data)]; n != 0 {
			t.Errorf("an ignored shard was fetched %d times", n)
		}
	}
	if _, err := os.Lstat(filepath.Join(res.Path, "model-00001-of-00002.safetensors")); !os.IsNotExist(err) {
		t.Errorf("an ignored shard is in the snapshot: %v", err)
	}
	_, err := pullmodel.Pull(testCtx(t), client(t), ref, pullmodel.Options{CacheDir: cacheDir(t), Allow: []string{"[unclosed"}})
	wantCode(t, err, oci.CodeInvalidArgument)
}

func TestConcurrentPullsFetchEachBlobOnce(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, sampleModel(t)...)
	c := count(reg)
	c.delay = 50e6 // 50 ms a blob request, so the pulls overlap
	var wg sync.WaitGroup
	paths := make([]string, 6)
	errs := make([]error, 6)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each with its own cache handle, as separate processes have.
			res, err := pullmodel.Pull(testCtx(t), client(t), ref, pullmodel.Options{CacheDir: root})
			if err == nil {
				paths[i] = res.Path
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
		wantFile(t, filepath.Join(paths[i], "tokenizer", "vocab.json"), `{"a":1}`)
	}
	for d, n := range c.blobs {
		if n != 1 {
			t.Errorf("blob %s fetched %d times, want once", d, n)
		}
	}
	if len(c.blobs) != 5 {
		t.Errorf("%d distinct blobs fetched, want 5", len(c.blobs))
	}
}

func TestTheCacheNeverWaitsOnFlock(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	ref := reg.Ref("org/model", ":v1")
	data := bytes.Repeat([]byte("w"), 1<<20)
	pushModel(t, ref, layer{mtWeight, "w.bin", data})
	root := cacheDir(t)
	ch, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	// Another process flocks the partial file: where flock works it would
	// make a flock user wait; the cache relies on its leases alone.
	partial := ch.BlobPath(digestOf(data)) + ".incomplete"
	if err := os.MkdirAll(filepath.Dir(partial), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(partial)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	res := pull(t, ref, pullmodel.Options{CacheDir: root})
	wantFile(t, filepath.Join(res.Path, "w.bin"), string(data))
}

func TestUnverifiedBlobsAreRehashedBeforeTheyAreServed(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	ref := reg.Ref("org/model", ":v1")
	good, bad := bytes.Repeat([]byte("g"), 1<<20), bytes.Repeat([]byte("x"), 1<<20)
	pushModel(t, ref, layer{mtWeight, "good.bin", good}, layer{mtWeight, "bad.bin", bad})
	root := cacheDir(t)
	ch, _ := cache.Open(root)
	pull(t, ref, pullmodel.Options{CacheDir: root})
	pullmodel.WaitDurable()

	// As after a crash: states from before a reboot, one blob's data lost.
	foreign := []byte(`{"boot":"otherhost/otherboot","durable":false}`)
	for _, d := range []string{digestOf(good), digestOf(bad)} {
		if err := os.WriteFile(ch.BlobPath(d)+".state", foreign, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(ch.BlobPath(digestOf(bad)), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c := count(reg)
	res := pull(t, ref, pullmodel.Options{CacheDir: root})
	wantFile(t, filepath.Join(res.Path, "bad.bin"), string(bad))
	wantFile(t, filepath.Join(res.Path, "good.bin"), string(good))
	if c.blobs[digestOf(bad)] != 1 || c.blobs[digestOf(good)] != 0 {
		t.Errorf("blob requests %v: want the damaged blob fetched once, the good one not at all", c.blobs)
	}
	if got := cache.TrustOf(ch.BlobPath(digestOf(good))); got != cache.Durable {
		t.Errorf("the re-verified blob is %v, want Durable", got)
	}
}

func TestSyncDurabilityIsDurableWhenThePullReturns(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	ref := reg.Ref("org/model", ":v1")
	data := bytes.Repeat([]byte("s"), 1<<20)
	pushModel(t, ref, layer{mtWeight, "s.bin", data})
	root := cacheDir(t)
	ch, _ := cache.Open(root)
	pull(t, ref, pullmodel.Options{CacheDir: root, Sync: true})
	if got := cache.TrustOf(ch.BlobPath(digestOf(data))); got != cache.Durable {
		t.Errorf("after a sync pull the blob is %v, want Durable", got)
	}
}

func TestADeadHoldersLeaseDoesNotBlockThePull(t *testing.T) {
	t.Parallel()
	if cache.BootID() == "" {
		t.Skip("no boot id on this system (Linux always has one)")
	}
	reg := testutil.NewRegistry(t)
	ref := reg.Ref("org/model", ":v1")
	data := bytes.Repeat([]byte("d"), 1<<20)
	pushModel(t, ref, layer{mtWeight, "d.bin", data})
	root := cacheDir(t)
	ch, _ := cache.Open(root)
	host, _ := os.Hostname()
	dead := deadPID(t)
	lease := []byte(`{"host":"` + host + `","boot":"` + cache.BootID() + `","pid":` + itoa(dead) + `,"token":"t"}`)
	if err := os.WriteFile(ch.LockPath(digestOf(data)), lease, 0o644); err != nil {
		t.Fatal(err)
	}
	// A lease of an hour: only the dead-process rule can let this finish.
	res := pull(t, ref, pullmodel.Options{CacheDir: root, Lease: 3600e9})
	wantFile(t, filepath.Join(res.Path, "d.bin"), string(data))
}

func TestUnsafeArchiveIsRefusedAndLeavesNothing(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	ref := reg.Ref("org/model", ":v1")
	evil := tarGz(t, map[string]string{"ok.txt": "fine", "../../../escaped.txt": "evil"})
	pushModel(t, ref, layer{mtWeightConfig, "config.json", []byte("{}")}, layer{mtCodeTarGzip, "code", evil})
	root := cacheDir(t)
	base := filepath.Dir(root)
	_, err := pullmodel.Pull(testCtx(t), client(t), ref, pullmodel.Options{CacheDir: root})
	wantCode(t, err, oci.CodeUnsafeArchive)
	_ = filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
		if err == nil && (fi.Name() == "escaped.txt" || fi.Name() == "ok.txt") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	tmp, _ := os.ReadDir(filepath.Join(root, "tmp"))
	if len(tmp) != 0 {
		t.Errorf("staging left behind: %v", tmp)
	}
}

func TestLocalDirGetsRealFilesAndSkipsThemTheNextTime(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	ref := reg.Ref("org/model", ":v1")
	layers := sampleModel(t)
	pushModel(t, ref, layers...)
	dir := filepath.Join(t.TempDir(), "model")
	root := cacheDir(t)
	c := count(reg)
	res := pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir})
	if res.Path != dir || res.BlobsDownloaded != 5 {
		t.Errorf("path %s (%d blobs downloaded), want %s (5)", res.Path, res.BlobsDownloaded, dir)
	}
	for _, p := range []string{"config.json", "model-00001-of-00002.safetensors", "tokenizer/vocab.json"} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s is not a regular file: %v", p, err)
		}
	}
	wantFile(t, filepath.Join(dir, "tokenizer", "merges.txt"), "a b\n")
	c.reset()
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir})
	if _, b := c.totals(); b != 0 {
		t.Errorf("repeat pull into the local dir: %d blob requests, want 0", b)
	}
	// A file changed since is fetched again; nothing else is.
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.reset()
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir})
	wantFile(t, filepath.Join(dir, "config.json"), `{"model_type":"tiny"}`)
	if _, b := c.totals(); b != 1 {
		t.Errorf("after an edit: %d blob requests %v, want 1", b, c.blobs)
	}
}

func TestALocalDirThatCannotBeCreatedSaysWhich(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	ref := reg.Ref("org/model", ":v1")
	pushModel(t, ref, sampleModel(t)...)
	file := filepath.Join(t.TempDir(), "taken")
	testutil.WriteFile(t, file, []byte("x"), 0o644)
	_, err := pullmodel.Pull(testCtx(t), client(t), ref, pullmodel.Options{CacheDir: cacheDir(t), LocalDir: file})
	wantCode(t, err, oci.CodeIO)
	if !strings.Contains(err.Error(), "creating the local directory "+file) {
		t.Errorf("%q does not name the local directory", err)
	}
}

func TestCacheListRemoveAndPrune(t *testing.T) {
	t.Parallel()
	reg, ref, digest, root := setup(t, sampleModel(t)...)
	res := pull(t, ref, pullmodel.Options{CacheDir: root})
	ch, _ := cache.Open(root)
	l, err := ch.List()
	if err != nil || len(l.Repos) != 1 || len(l.Repos[0].Snapshots) != 1 {
		t.Fatalf("listing %+v %v", l, err)
	}
	s := l.Repos[0].Snapshots[0]
	if s.Digest != digest || strings.Join(s.Tags, ",") != "v1" || s.Files != 5 || s.Path != res.Path || s.LastUsed.IsZero() {
		t.Errorf("snapshot %+v", s)
	}
	if want := int64(3<<20 + 2<<20 + len(`{"model_type":"tiny"}`) + len(`{"a":1}`) + len("a b\n")); s.Size != want {
		t.Errorf("size %d, want %d", s.Size, want)
	}
	rm, found, err := ch.Remove(reg.Host, "org/model", "v1", "")
	if err != nil || !found || len(rm.Snapshots) != 1 || rm.Bytes < 5<<20 {
		t.Fatalf("remove: %+v %v %v", rm, found, err)
	}
	if _, err := os.Stat(res.Path); !os.IsNotExist(err) {
		t.Errorf("snapshot still there: %v", err)
	}
	if _, found, _ := ch.Remove(reg.Host, "org/model", "v1", ""); found {
		t.Error("removing twice found something")
	}
	// A pull cut short leaves blobs no snapshot uses: prune takes them.
	pull(t, ref, pullmodel.Options{CacheDir: root, Allow: []string{"config.json"}})
	if _, _, err := ch.Remove(reg.Host, "org/model", "", digest); err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte("o"), 1000)
	if err := os.WriteFile(ch.BlobPath(digestOf(other)), other, 0o644); err != nil {
		t.Fatal(err)
	}
	if rm, err := ch.Prune(3600e9); err != nil || rm.Blobs != 0 {
		t.Errorf("prune kept nothing young: %+v %v", rm, err)
	}
	if rm, err := ch.Prune(0); err != nil || rm.Blobs == 0 {
		t.Errorf("prune: %+v %v", rm, err)
	}
	if _, err := os.Stat(ch.BlobPath(digestOf(other))); !os.IsNotExist(err) {
		t.Errorf("unused blob survived prune: %v", err)
	}
}

func TestAnIndexLeadsToItsModelAndItsTagToTheSnapshot(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := bytes.Repeat([]byte("i"), 1<<20)
	d := pushModel(t, reg.Ref("org/model", ":model"), layer{mtWeight, "w.bin", data})
	raw, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []map[string]any{{"mediaType": mtManifest, "digest": d, "size": manifestSize(t, reg, d), "artifactType": mtArtifact}},
	})
	ref := reg.Ref("org/model", ":v1")
	r, _ := name.ParseReference(ref)
	if err := remote.Put(r, rawManifest{raw, "application/vnd.oci.image.index.v1+json"}); err != nil {
		t.Fatal(err)
	}
	root := cacheDir(t)
	res := pull(t, ref, pullmodel.Options{CacheDir: root})
	if res.Digest != d {
		t.Errorf("pulled %s, want the model manifest %s", res.Digest, d)
	}
	wantFile(t, filepath.Join(res.Path, "w.bin"), string(data))
	// Offline, by the index's tag: the index and its child come from the cache.
	reg.Server.Close()
	if again := pull(t, ref, pullmodel.Options{CacheDir: root, Offline: true}); again.Path != res.Path {
		t.Errorf("offline pull %s, want %s", again.Path, res.Path)
	}
	ch, _ := cache.Open(root)
	l, _ := ch.List()
	if len(l.Repos) != 1 || strings.Join(l.Repos[0].Snapshots[0].Tags, ",") != "v1" {
		t.Fatalf("listing %+v: want the snapshot tagged v1", l)
	}
	if rm, found, err := ch.Remove(reg.Host, "org/model", "v1", ""); err != nil || !found || len(rm.Snapshots) != 1 {
		t.Errorf("removing the index's tag: %+v %v %v", rm, found, err)
	}
}

func manifestSize(t *testing.T, reg *testutil.Registry, d string) int64 {
	t.Helper()
	r, _ := name.ParseReference(reg.Ref("org/model", "@"+d))
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	return desc.Size
}

func TestABlobCutShortIsFetchedAgainWhateverItsState(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("c"), 1<<20)
	reg, ref, _, root := setup(t, layer{mtWeight, "c.bin", data})
	pull(t, ref, pullmodel.Options{CacheDir: root, Sync: true})
	ch, _ := cache.Open(root)
	if err := os.Truncate(ch.BlobPath(digestOf(data)), 1000); err != nil {
		t.Fatal(err)
	}
	c := count(reg)
	res := pull(t, ref, pullmodel.Options{CacheDir: root})
	wantFile(t, filepath.Join(res.Path, "c.bin"), string(data))
	if n := c.blobs[digestOf(data)]; n != 1 {
		t.Errorf("the truncated blob was fetched %d times, want once", n)
	}
}

func TestOfflineLocalDirIsServedWhenComplete(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, sampleModel(t)...)
	dir := filepath.Join(t.TempDir(), "model")
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir})
	reg.Server.Close()
	if res := pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir, Offline: true}); res.Path != dir {
		t.Errorf("offline local pull: %s, want %s", res.Path, dir)
	}
	if err := os.Remove(filepath.Join(dir, "config.json")); err != nil {
		t.Fatal(err)
	}
	_, err := pullmodel.Pull(testCtx(t), client(t), ref, pullmodel.Options{CacheDir: root, LocalDir: dir, Offline: true})
	wantCode(t, err, oci.CodeNotCached)
}

// sameBytes fails unless the two files hold the same bytes.
func sameBytes(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s (%d bytes) differs from %s (%d bytes)", a, len(x), b, len(y))
	}
}

var localFiles = []string{"config.json", shard1, shard2, "tokenizer/vocab.json", "tokenizer/merges.txt"}

func TestALocalDirOfACachedModelIsCopiedFromTheCacheNotDownloaded(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, sampleModel(t)...)
	snap := pull(t, ref, pullmodel.Options{CacheDir: root})
	c := count(reg)
	dir := filepath.Join(t.TempDir(), "model")
	res := pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir})
	if _, b := c.totals(); b != 0 || res.BlobsDownloaded != 0 || res.BytesDownloaded != 0 {
		t.Errorf("%d blob requests %v, %d blobs / %d bytes downloaded: want none", b, c.blobs, res.BlobsDownloaded, res.BytesDownloaded)
	}
	if res.Path != dir {
		t.Errorf("path %s, want %s", res.Path, dir)
	}
	for _, p := range localFiles {
		local := filepath.Join(dir, filepath.FromSlash(p))
		fi, err := os.Lstat(local)
		if err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%s is not a regular file: %v", p, err)
		}
		sameBytes(t, local, filepath.Join(snap.Path, filepath.FromSlash(p)))
		if cached, err := os.Stat(filepath.Join(snap.Path, filepath.FromSlash(p))); err != nil || os.SameFile(fi, cached) {
			t.Errorf("%s is the cache's file itself (a hard link), not a copy: %v", p, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, shard1)); fi.Mode().Perm() != 0o644 {
		t.Errorf("%s has mode %v, want 0644 as a download gets", shard1, fi.Mode().Perm())
	}
	// Its own file: editing it leaves the cache alone.
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(snap.Path, "config.json"), `{"model_type":"tiny"}`)
	// The next pull puts the edited file right, from the cache again.
	c.reset()
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir})
	wantFile(t, filepath.Join(dir, "config.json"), `{"model_type":"tiny"}`)
	if _, b := c.totals(); b != 0 {
		t.Errorf("restoring an edited file: %d blob requests, want 0", b)
	}
}

func TestOfflineLocalDirIsServedFromTheCache(t *testing.T) {
	t.Parallel()
	reg, ref, digest, root := setup(t, sampleModel(t)...)
	snap := pull(t, ref, pullmodel.Options{CacheDir: root})
	reg.Server.Close()
	for _, r := range []string{ref, reg.Ref("org/model", "@"+digest)} {
		dir := filepath.Join(t.TempDir(), "model")
		res := pull(t, r, pullmodel.Options{CacheDir: root, LocalDir: dir, Offline: true})
		if res.Path != dir || res.BlobsDownloaded != 0 {
			t.Errorf("offline local pull of %s: %s (%d blobs), want %s (0)", r, res.Path, res.BlobsDownloaded, dir)
		}
		for _, p := range localFiles {
			sameBytes(t, filepath.Join(dir, filepath.FromSlash(p)), filepath.Join(snap.Path, filepath.FromSlash(p)))
		}
	}
}

func TestOfflineLocalDirNamesWhatNeitherHoldsAndCopiesNothing(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, sampleModel(t)...)
	pull(t, ref, pullmodel.Options{CacheDir: root, Allow: []string{"*.json"}})
	reg.Server.Close()
	dir := filepath.Join(t.TempDir(), "model")
	_, err := pullmodel.Pull(testCtx(t), client(t), ref, pullmodel.Options{CacheDir: root, LocalDir: dir, Offline: true})
	wantCode(t, err, oci.CodeNotCached)
	if !strings.Contains(err.Error(), "3 of the selected files") || !strings.Contains(err.Error(), root) {
		t.Errorf("%q does not say that the two shards and the tokenizer are missing from the cache", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); !os.IsNotExist(err) {
		t.Errorf("a pull that could not finish copied config.json first: %v", err)
	}
	// What the cache holds is enough for what it selects.
	res := pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir, Offline: true, Allow: []string{"*.json"}})
	wantFile(t, filepath.Join(res.Path, "config.json"), `{"model_type":"tiny"}`)
}

func TestAPartialFileInTheLocalDirIsReplacedWhole(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, sampleModel(t)...)
	snap := pull(t, ref, pullmodel.Options{CacheDir: root})
	dir := filepath.Join(t.TempDir(), "model")
	half := bytes.Repeat([]byte("a"), 1<<20)
	testutil.WriteFile(t, filepath.Join(dir, shard1), half, 0o644)
	// An interrupted download's leftovers too.
	testutil.WriteFile(t, filepath.Join(dir, shard2+".incomplete"), []byte("bb"), 0o644)
	testutil.WriteFile(t, filepath.Join(dir, shard2+".incomplete.json"), []byte(`{"digest":"x","size":2,"valid":-1}`), 0o644)
	// A second name for the partial file: written in place, it would change.
	old := filepath.Join(t.TempDir(), "old")
	if err := os.Link(filepath.Join(dir, shard1), old); err != nil {
		t.Fatal(err)
	}
	c := count(reg)
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir})
	if _, b := c.totals(); b != 0 {
		t.Errorf("%d blob requests, want 0", b)
	}
	sameBytes(t, filepath.Join(dir, shard1), filepath.Join(snap.Path, shard1))
	sameBytes(t, filepath.Join(dir, shard2), filepath.Join(snap.Path, shard2))
	if b, _ := os.ReadFile(old); !bytes.Equal(b, half) {
		t.Errorf("the partial file was rewritten in place (%d bytes now), not replaced by a rename", len(b))
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.incomplete*"))
	if len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestALocalDirIsNotCopiedFromABlobTheCacheCannotTrust(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("t"), 1<<20)
	reg, ref, _, root := setup(t, layer{mtWeight, "t.bin", data})
	pull(t, ref, pullmodel.Options{CacheDir: root})
	pullmodel.WaitDurable()
	ch, _ := cache.Open(root)
	blob := ch.BlobPath(digestOf(data))
	// As after a crash: a state from another boot, the data lost.
	testutil.WriteFile(t, blob+".state", []byte(`{"boot":"otherhost/otherboot","durable":false}`), 0o644)
	testutil.WriteFile(t, blob, make([]byte, 1<<20), 0o644)
	c := count(reg)
	dir := filepath.Join(t.TempDir(), "model")
	res := pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir})
	wantFile(t, filepath.Join(dir, "t.bin"), string(data))
	if c.blobs[digestOf(data)] != 1 || res.BytesDownloaded != int64(len(data)) {
		t.Errorf("blob requests %v, %d bytes downloaded: want the damaged blob fetched once", c.blobs, res.BytesDownloaded)
	}
}

// reflinks says whether the file system under dir shares extents (FICLONE).
func reflinks(t *testing.T, dir string) bool {
	t.Helper()
	a, err := os.Create(filepath.Join(dir, "reflink-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	b, err := os.Create(filepath.Join(dir, "reflink-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	return unix.IoctlFileClone(int(b.Fd()), int(a.Fd())) == nil
}

// A download into a local directory fills the cache only where that is
// free (a reflink); elsewhere the cache stays as it was.
func TestALocalDirDownloadFillsTheCacheOnlyByReflink(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("r"), 1<<20)
	reg, ref, _, root := setup(t, layer{mtWeight, "r.bin", data})
	dir := filepath.Join(filepath.Dir(root), "model")
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir})
	ch, _ := cache.Open(root)
	_, err := os.Stat(ch.BlobPath(digestOf(data)))
	if !reflinks(t, filepath.Dir(root)) {
		if !os.IsNotExist(err) {
			t.Errorf("without reflinks the local pull copied its file into the cache: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("with reflinks the cache did not get the file: %v", err)
	}
	c := count(reg)
	snap := pull(t, ref, pullmodel.Options{CacheDir: root})
	wantFile(t, filepath.Join(snap.Path, "r.bin"), string(data))
	if c.blobs[digestOf(data)] != 0 {
		t.Errorf("the reflinked blob was downloaded again")
	}
}
