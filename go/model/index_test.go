package model_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/oci-client/liboci/model"
)

func indexJSON(entries ...model.Descriptor) []byte {
	for i := range entries {
		if entries[i].MediaType == "" {
			entries[i].MediaType = ociManifest
		}
		if entries[i].Size == 0 {
			entries[i].Size = 1234
		}
	}
	b, err := json.Marshal(struct {
		SchemaVersion int                `json:"schemaVersion"`
		MediaType     string             `json:"mediaType"`
		Manifests     []model.Descriptor `json:"manifests"`
	}{2, ociIndex, entries})
	if err != nil {
		panic(err)
	}
	return b
}

func plat(os, arch, variant string) *model.Platform {
	return &model.Platform{OS: os, Architecture: arch, Variant: variant}
}

// attestation is how BuildKit lists a provenance manifest for dg(n-1).
func attestation(n int) model.Descriptor {
	return model.Descriptor{Digest: dg(n), Platform: plat("unknown", "unknown", ""), Annotations: map[string]string{
		"vnd.docker.reference.digest": dg(n - 1), "vnd.docker.reference.type": "attestation-manifest"}}
}

func TestSelectManifest(t *testing.T) {
	amd := model.Descriptor{Digest: dg(1), Platform: plat("linux", "amd64", "")}
	arm := model.Descriptor{Digest: dg(2), Platform: plat("linux", "arm64", "v8")}
	armv7 := model.Descriptor{Digest: dg(3), Platform: plat("linux", "arm", "v7")}
	mp := model.Descriptor{Digest: dg(4), ArtifactType: mpManifest}
	dmr := model.Descriptor{Digest: dg(5), ArtifactType: dmrConfigV01}
	sig := model.Descriptor{Digest: dg(6), ArtifactType: "application/vnd.dev.cosign.artifact.sig.v1+json"}
	kit := model.Descriptor{Digest: dg(7), Annotations: map[string]string{"org.example.config.mediaType": kitConfig}}
	cases := []struct {
		name    string
		entries []model.Descriptor
		sel     model.Selector
		want    string
		err     error
		msg     []string
	}{
		{"the only entry", []model.Descriptor{mp}, model.Selector{}, dg(4), nil, nil},
		{"the only entry, whatever it is", []model.Descriptor{sig}, model.Selector{}, dg(6), nil, nil},
		{"attestations are not candidates", []model.Descriptor{amd, attestation(9)}, model.Selector{}, dg(1), nil, nil},
		{"by platform", []model.Descriptor{amd, arm, armv7, attestation(9)}, model.Selector{Platform: "linux/arm64"}, dg(2), nil, nil},
		{"by platform with variant", []model.Descriptor{amd, arm, armv7}, model.Selector{Platform: "linux/arm/v7"}, dg(3), nil, nil},
		{"by platform, spelled otherwise", []model.Descriptor{amd, arm}, model.Selector{Platform: "Linux/x86_64"}, dg(1), nil, nil},
		{"arm64/v8 is arm64", []model.Descriptor{amd, arm}, model.Selector{Platform: "linux/aarch64/v8"}, dg(2), nil, nil},
		{"by artifact type", []model.Descriptor{sig, mp, dmr}, model.Selector{ArtifactType: mpManifest}, dg(4), nil, nil},
		{"by both", []model.Descriptor{amd, {Digest: dg(8), Platform: plat("linux", "amd64", ""), ArtifactType: mpManifest}},
			model.Selector{Platform: "linux/amd64", ArtifactType: mpManifest}, dg(8), nil, nil},
		{"the only one that looks like a model", []model.Descriptor{sig, mp}, model.Selector{}, dg(4), nil, nil},
		{"a model by its config annotation", []model.Descriptor{sig, kit}, model.Selector{}, dg(7), nil, nil},
		{"an unknown/unknown entry is never chosen", []model.Descriptor{amd, {Digest: dg(8), Platform: plat("unknown", "unknown", "")}}, model.Selector{}, dg(1), nil, nil},

		{"several platforms and no selector", []model.Descriptor{amd, arm, attestation(9)}, model.Selector{},
			"", model.ErrAmbiguousIndex, []string{"2 manifests", dg(1) + " (linux/amd64)", dg(2) + " (linux/arm64/v8)"}},
		{"several models", []model.Descriptor{sig, mp, dmr}, model.Selector{},
			"", model.ErrAmbiguousIndex, []string{"2 model manifests", dg(4) + " (artifactType " + mpManifest + ")", dg(5)}},
		{"no platform matches", []model.Descriptor{amd, arm}, model.Selector{Platform: "linux/s390x"},
			"", model.ErrAmbiguousIndex, []string{"platform linux/s390x", dg(1), dg(2)}},
		{"a selector that matches only an attestation", []model.Descriptor{amd, attestation(9)}, model.Selector{Platform: "unknown/unknown"},
			"", model.ErrAmbiguousIndex, []string{dg(1)}},
		{"a single entry that does not match", []model.Descriptor{mp}, model.Selector{ArtifactType: dmrConfigV01},
			"", model.ErrAmbiguousIndex, []string{dg(4)}},
		{"two match", []model.Descriptor{amd, arm, {Digest: dg(8), Platform: plat("linux", "arm64", "")}}, model.Selector{Platform: "linux/arm64"},
			"", model.ErrAmbiguousIndex, []string{"2 manifests match", dg(2), dg(8)}},
		{"only attestations", []model.Descriptor{attestation(9)}, model.Selector{}, "", model.ErrNotModel, nil},
		{"empty", nil, model.Selector{}, "", model.ErrNotModel, nil},
		{"bad platform", []model.Descriptor{amd}, model.Selector{Platform: "linux"}, "", model.ErrBadPattern, nil},
		{"bad platform with empty part", []model.Descriptor{amd}, model.Selector{Platform: "linux//v7"}, "", model.ErrBadPattern, nil},
		{"bad digest", []model.Descriptor{{Digest: "sha256:1234"}}, model.Selector{}, "", model.ErrBadManifest, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := model.SelectManifest(indexJSON(c.entries...), c.sel)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("SelectManifest = %v, %v; want %v", d.Digest, err, c.err)
				}
				for _, s := range c.msg {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil || d.Digest != c.want {
				t.Fatalf("SelectManifest = %v, %v; want %s", d.Digest, err, c.want)
			}
			if d.MediaType != ociManifest || d.Size != 1234 {
				t.Errorf("descriptor %+v", d)
			}
		})
	}
}

func TestSelectManifestRefuses(t *testing.T) {
	for _, raw := range []string{
		`{"schemaVersion":2,`,
		`[]`,
		`{"schemaVersion":2,"mediaType":"` + ociManifest + `","manifests":[]}`,
		`{"schemaVersion":1,"manifests":[]}`,
		`{"schemaVersion":2,"manifests":[{"mediaType":"` + ociManifest + `","digest":"` + dg(1) + `","size":-5}]}`,
	} {
		if _, err := model.SelectManifest([]byte(raw), model.Selector{}); !errors.Is(err, model.ErrBadManifest) {
			t.Errorf("SelectManifest(%s) = %v, want ErrBadManifest", raw, err)
		}
	}
	// A Docker manifest list is an index too.
	raw := `{"schemaVersion":2,"mediaType":"` + dockerList + `","manifests":[{"mediaType":"` + dockerManifest + `","digest":"` + dg(1) + `","size":7,"platform":{"os":"linux","architecture":"amd64"}}]}`
	if d, err := model.SelectManifest([]byte(raw), model.Selector{Platform: "linux/amd64"}); err != nil || d.Digest != dg(1) {
		t.Errorf("manifest list: %v, %v", d, err)
	}
}

func TestIsIndex(t *testing.T) {
	cases := []struct {
		mediaType, raw string
		want           bool
	}{
		{ociIndex, `{}`, true},
		{dockerList, `garbage`, true},
		{ociIndex + "; charset=utf-8", ``, true},
		{ociManifest, `{"manifests":[{}]}`, false},
		{dockerManifest, ``, false},
		{"", `{"schemaVersion":2,"mediaType":"` + ociIndex + `","manifests":[]}`, true},
		{"application/json", `{"schemaVersion":2,"manifests":[{"digest":"x"}]}`, true},
		{"", `{"schemaVersion":2,"manifests":null}`, false},
		{"", `{"schemaVersion":2,"config":{},"layers":[]}`, false},
		{"", `{"schemaVersion":2,"mediaType":"` + ociManifest + `","manifests":[{}]}`, false},
		{"", `not json`, false},
		{"", ``, false},
	}
	for _, c := range cases {
		if got := model.IsIndex(c.mediaType, []byte(c.raw)); got != c.want {
			t.Errorf("IsIndex(%q, %s) = %v", c.mediaType, c.raw, got)
		}
	}
}
