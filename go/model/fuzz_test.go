package model_test

import (
	"errors"
	"testing"

	"github.com/oci-client/liboci/internal/safepath"
	"github.com/oci-client/liboci/model"
)

// FuzzParse: no input panics, every error is one of the package's kinds, and
// every Model keeps the promises its callers rely on.
func FuzzParse(f *testing.F) {
	f.Add([]byte(dmrV01), ociManifest, []byte(nil))
	f.Add(manifestJSON(dmrConfigV02, "", named("application/vnd.docker.ai.safetensors", "a/b.safetensors"),
		named("application/vnd.docker.ai.dir.tar", "d.tar"), unnamed("application/vnd.docker.ai.license")), "", []byte(nil))
	f.Add(manifestJSON(mpConfig, mpManifest, named("application/vnd.cncf.model.weight.v1.tar+zstd", "w"),
		named("application/vnd.cncf.model.doc.v1.raw", "../x")), ociManifest, []byte(nil))
	f.Add(manifestJSON(kitConfig, "", unnamed("application/vnd.kitops.modelkit.model.v1.tar"),
		unnamed("application/vnd.kitops.modelkit.code.v1.tar")), ociManifest,
		[]byte(`{"model":{"path":"m/x"},"code":[{"path":"."}]}`))
	f.Add(manifestJSON("application/vnd.oci.empty.v1+json", "", titled("application/octet-stream", "x"),
		layer{mt: "application/vnd.oci.image.layer.v1.tar+gzip", name: "d", key: titleKey, ann: map[string]string{"io.deis.oras.content.unpack": "true"}}), "", []byte(nil))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[]}`), "", []byte(nil))
	f.Fuzz(func(t *testing.T, raw []byte, mediaType string, config []byte) {
		m, err := model.ParseWithConfig(raw, mediaType, config)
		if err != nil {
			if m != nil || !(errors.Is(err, model.ErrBadManifest) || errors.Is(err, model.ErrNotModel)) {
				t.Fatalf("Parse = %v, %v", m, err)
			}
			return
		}
		if len(m.Files) == 0 {
			t.Fatal("a model without files")
		}
		seen := map[string]bool{}
		var total int64
		for _, fl := range m.Files {
			if p, err := safepath.Clean(fl.Path); err != nil || p != fl.Path || p == "" {
				t.Fatalf("path %q: clean %q, %v", fl.Path, p, err)
			}
			if p, err := safepath.Clean(fl.ExtractTo); fl.ExtractTo != "" && (err != nil || p != fl.ExtractTo) {
				t.Fatalf("extract to %q: clean %q, %v", fl.ExtractTo, p, err)
			}
			if fl.Archive == "" && fl.ExtractTo != "" {
				t.Fatalf("a raw file with ExtractTo: %+v", fl)
			}
			if seen[fl.Path] {
				t.Fatalf("path %q twice", fl.Path)
			}
			seen[fl.Path] = true
			if fl.Size < 0 || fl.Kind == "" {
				t.Fatalf("file %+v", fl)
			}
			total += fl.Size
		}
		if total != m.TotalSize || total < 0 {
			t.Fatalf("TotalSize %d, files add up to %d", m.TotalSize, total)
		}
		if _, err := model.Filter(m.Files, []string{"*.json", "a/"}, []string{"[!a]*"}); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzSelectManifest: no input panics, and what it picks is an entry of the
// index with a valid digest.
func FuzzSelectManifest(f *testing.F) {
	amd := model.Descriptor{Digest: dg(1), Platform: plat("linux", "amd64", "")}
	mp := model.Descriptor{Digest: dg(4), ArtifactType: mpManifest}
	f.Add(indexJSON(amd, attestation(9)), "", "")
	f.Add(indexJSON(amd, mp, model.Descriptor{Digest: dg(2), Platform: plat("linux", "arm64", "v8")}), "linux/arm64", "")
	f.Add(indexJSON(mp, model.Descriptor{Digest: dg(5), ArtifactType: dmrConfigV01}), "", mpManifest)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:00"}]}`), "x/y/z/w", "")
	f.Fuzz(func(t *testing.T, raw []byte, platform, artifactType string) {
		d, err := model.SelectManifest(raw, model.Selector{Platform: platform, ArtifactType: artifactType})
		if err != nil {
			if !(errors.Is(err, model.ErrBadManifest) || errors.Is(err, model.ErrNotModel) ||
				errors.Is(err, model.ErrAmbiguousIndex) || errors.Is(err, model.ErrBadPattern)) {
				t.Fatalf("SelectManifest error of no kind: %v", err)
			}
			return
		}
		if d.Digest == "" || d.Size < 0 {
			t.Fatalf("picked %+v", d)
		}
		model.IsIndex("", raw)
	})
}

// FuzzMatch: no pattern panics or is accepted by Match but refused by Filter.
func FuzzMatch(f *testing.F) {
	for _, p := range []string{"*.json", "[!a-c]x", "[z-a!b]", "tokenizer/", "[", "[]-a]", "a*b?c[-]"} {
		f.Add(p, "a/b.json")
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		_, err := model.Match(pattern, name)
		if err != nil && !errors.Is(err, model.ErrBadPattern) {
			t.Fatal(err)
		}
		_, ferr := model.Filter([]model.File{{Path: name}}, []string{pattern}, nil)
		if (err == nil) != (ferr == nil) {
			t.Fatalf("Match error %v, Filter error %v", err, ferr)
		}
	})
}
