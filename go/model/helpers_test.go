package model_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/oci-client/liboci/model"
)

const (
	ociManifest    = "application/vnd.oci.image.manifest.v1+json"
	dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	ociIndex       = "application/vnd.oci.image.index.v1+json"
	dockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"

	dmrConfigV01 = "application/vnd.docker.ai.model.config.v0.1+json"
	dmrConfigV02 = "application/vnd.docker.ai.model.config.v0.2+json"
	mpConfig     = "application/vnd.cncf.model.config.v1+json"
	mpManifest   = "application/vnd.cncf.model.manifest.v1+json"
	kitConfig    = "application/vnd.kitops.modelkit.config.v1+json"

	filepathKey = "org.cncf.model.filepath"
	titleKey    = "org.opencontainers.image.title"
)

// dg is a distinct valid digest for each n.
func dg(n int) string { return fmt.Sprintf("sha256:%064x", n) }

type layer struct {
	mt   string
	name string // a filepath annotation, unless key says otherwise
	key  string
	ann  map[string]string
	size int64
}

// named is a layer with a filepath annotation.
func named(mt, name string) layer { return layer{mt: mt, name: name} }

// titled is a layer with an org.opencontainers.image.title annotation.
func titled(mt, name string) layer { return layer{mt: mt, name: name, key: titleKey} }

func unnamed(mt string) layer { return layer{mt: mt} }

// manifestJSON builds an OCI image manifest; layer i gets digest dg(i+1)
// and size 100*(i+1) unless it says otherwise.
func manifestJSON(configType, artifactType string, layers ...layer) []byte {
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		ArtifactType  string `json:"artifactType,omitempty"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{SchemaVersion: 2, MediaType: ociManifest, ArtifactType: artifactType,
		Config: desc{MediaType: configType, Digest: dg(1000), Size: 321}}
	for i, l := range layers {
		d := desc{MediaType: l.mt, Digest: dg(i + 1), Size: int64(100 * (i + 1)), Annotations: map[string]string{}}
		if l.size != 0 {
			d.Size = l.size
		}
		if l.name != "" {
			key := l.key
			if key == "" {
				key = filepathKey
			}
			d.Annotations[key] = l.name
		}
		for k, v := range l.ann {
			d.Annotations[k] = v
		}
		m.Layers = append(m.Layers, d)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func mustParse(t *testing.T, raw []byte) *model.Model {
	t.Helper()
	m, err := model.Parse(raw, ociManifest)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

// fileList is a compact view of Files for comparing: path, kind and, for
// archives, format->extract_to ("." for the root).
func fileList(fs []model.File) string {
	var out []string
	for _, f := range fs {
		s := f.Path + " " + f.Kind
		if f.Archive != "" {
			to := f.ExtractTo
			if to == "" {
				to = "."
			}
			s += " " + f.Archive + "->" + to
		}
		out = append(out, s)
	}
	return strings.Join(out, "\n")
}
