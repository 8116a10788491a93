package model_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/oci-client/liboci/internal/safepath"
	"github.com/oci-client/liboci/model"
)

// A Docker Model Runner v0.1 model as Docker Hub serves ai/smollm2: one
// unnamed GGUF and a license.
const dmrV01 = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.docker.ai.model.config.v0.1+json",
    "size": 434,
    "digest": "sha256:354bf30d0aa7fa8e2b2ffdbd4b1e9b3e5d8bd2c3b2d2a1e4c4b5d6e7f8091a2b"
  },
  "layers": [
    {
      "mediaType": "application/vnd.docker.ai.gguf.v3",
      "size": 270590368,
      "digest": "sha256:e6c8c2b46b4e6b7c1f6f0f3a0e4e5f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e"
    },
    {
      "mediaType": "application/vnd.docker.ai.license",
      "size": 11357,
      "digest": "sha256:a8b2f3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80"
    }
  ]
}`

func TestParseDockerV01(t *testing.T) {
	m, err := model.Parse([]byte(dmrV01), ociManifest)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != model.FormatDocker || m.ManifestType != ociManifest || m.Config.MediaType != dmrConfigV01 {
		t.Errorf("format %q manifest %q config %q", m.Format, m.ManifestType, m.Config.MediaType)
	}
	if got, want := fileList(m.Files), "model.gguf weight\nLICENSE license"; got != want {
		t.Errorf("files:\n%s\nwant:\n%s", got, want)
	}
	if m.TotalSize != 270590368+11357 || len(m.Skipped) != 0 {
		t.Errorf("total %d, skipped %v", m.TotalSize, m.Skipped)
	}
	if f := m.Files[0]; f.Digest != "sha256:e6c8c2b46b4e6b7c1f6f0f3a0e4e5f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e" || f.Size != 270590368 || f.MediaType != "application/vnd.docker.ai.gguf.v3" {
		t.Errorf("file %+v", f)
	}
}

func TestParseFormats(t *testing.T) {
	cases := []struct {
		name   string
		raw    []byte
		format string
		files  string
	}{
		{"docker v0.1 sharded gguf with projector, template and licenses", manifestJSON(dmrConfigV01, "",
			unnamed("application/vnd.docker.ai.gguf.v3"),
			unnamed("application/vnd.docker.ai.gguf.v3"),
			unnamed("application/vnd.docker.ai.gguf.v3"),
			unnamed("application/vnd.docker.ai.mmproj"),
			unnamed("application/vnd.docker.ai.chat.template.jinja"),
			unnamed("application/vnd.docker.ai.license"),
			unnamed("application/vnd.docker.ai.license"),
			unnamed("application/vnd.docker.ai.gguf.v3.lora"),
		), model.FormatDocker, `model-00001-of-00003.gguf weight
model-00002-of-00003.gguf weight
model-00003-of-00003.gguf weight
model.mmproj mmproj
template.jinja chat-template
LICENSE license
LICENSE-2 license
adapter.gguf lora`},
		{"docker v0.1 safetensors with vllm config archive", manifestJSON(dmrConfigV01, "",
			unnamed("application/vnd.docker.ai.safetensors"),
			unnamed("application/vnd.docker.ai.safetensors"),
			unnamed("application/vnd.docker.ai.safetensors"),
			unnamed("application/vnd.docker.ai.vllm.config.tar"),
			unnamed("application/vnd.docker.ai.dir.tar"),
			unnamed("application/vnd.docker.ai.dir.tar"),
		), model.FormatDocker, `model-00001-of-00003.safetensors weight
model-00002-of-00003.safetensors weight
model-00003-of-00003.safetensors weight
vllm-config.tar weight-config tar->.
dir.tar other tar->.
dir-2.tar other tar->.`},
		{"docker v0.2 layer per file", manifestJSON(dmrConfigV02, "",
			named("application/vnd.docker.ai.safetensors", "model-00001-of-00002.safetensors"),
			named("application/vnd.docker.ai.safetensors", "model-00002-of-00002.safetensors"),
			named("application/vnd.docker.ai.safetensors", "text_encoder/model.safetensors"),
			named("application/vnd.docker.ai.model.file", "model.safetensors.index.json"),
			named("application/vnd.docker.ai.model.file", "tokenizer/tokenizer.json"),
			named("application/vnd.docker.ai.vllm.config.tar", "config.tar"),
			named("application/vnd.docker.ai.dir.tar", "scheduler.tar"),
			named("application/vnd.docker.ai.chat.template.jinja", "chat_template.jinja"),
			named("application/vnd.docker.ai.license", "LICENSE"),
		), model.FormatDocker, `model-00001-of-00002.safetensors weight
model-00002-of-00002.safetensors weight
text_encoder/model.safetensors weight
model.safetensors.index.json weight-config
tokenizer/tokenizer.json weight-config
config.tar weight-config tar->.
scheduler.tar other tar->.
chat_template.jinja chat-template
LICENSE license`},
		{"docker dduf and the spec's projector name", manifestJSON(dmrConfigV01, "",
			unnamed("application/vnd.docker.ai.dduf"),
			unnamed("application/vnd.docker.ai.gguf.v3.mmproj"),
		), model.FormatDocker, "model.dduf weight\nmodel.mmproj mmproj"},
		{"modelpack raw (modctl)", manifestJSON(mpConfig, mpManifest,
			named("application/vnd.cncf.model.weight.v1.raw", "model-00001-of-00002.safetensors"),
			named("application/vnd.cncf.model.weight.v1.raw", "model-00002-of-00002.safetensors"),
			named("application/vnd.cncf.model.weight.v1.raw", "mmproj-model-f16.gguf"),
			named("application/vnd.cncf.model.weight.config.v1.raw", "config.json"),
			named("application/vnd.cncf.model.weight.config.v1.raw", "tokenizer.json"),
			named("application/vnd.cncf.model.doc.v1.raw", "README.md"),
			named("application/vnd.cncf.model.doc.v1.raw", "LICENSE"),
			named("application/vnd.cncf.model.code.v1.raw", "modeling_x.py"),
			named("application/vnd.cncf.model.dataset.v1.raw", "data/eval.jsonl"),
		), model.FormatModelPack, `model-00001-of-00002.safetensors weight
model-00002-of-00002.safetensors weight
mmproj-model-f16.gguf mmproj
config.json weight-config
tokenizer.json weight-config
README.md doc
LICENSE doc
modeling_x.py code
data/eval.jsonl dataset`},
		{"modelpack archives", manifestJSON(mpConfig, mpManifest,
			named("application/vnd.cncf.model.weight.v1.tar", "model.safetensors"),
			named("application/vnd.cncf.model.weight.config.v1.tar+gzip", "tokenizer"),
			named("application/vnd.cncf.model.doc.v1.tar+zstd", "docs"),
			named("application/vnd.cncf.model.code.v1.tar", "src/run.py"),
			unnamed("application/vnd.cncf.model.dataset.v1.tar+gzip"),
			unnamed("application/vnd.cncf.model.weight.v1.tar"),
			named("application/vnd.cncf.model.weight.v1.tar", "."),
		), model.FormatModelPack, `model.safetensors weight tar->.
tokenizer weight-config tar+gzip->.
docs doc tar+zstd->.
src/run.py code tar->.
dataset.tar.gz dataset tar+gzip->.
weight.tar weight tar->.
weight-2.tar weight tar->.`},
		{"modelpack without artifactType, found by layers", manifestJSON("application/vnd.oci.empty.v1+json", "",
			named("application/vnd.cncf.model.weight.v1.raw", "model.gguf"),
		), model.FormatModelPack, "model.gguf weight"},
		{"modelpack typed weights that Docker Model Runner writes", manifestJSON(mpConfig, mpManifest,
			unnamed("application/vnd.cncf.model.weight.v1.gguf"),
			unnamed("application/vnd.cncf.model.weight.v1.safetensors"),
			unnamed("application/vnd.cncf.model.weight.v1.raw"),
		), model.FormatModelPack, "model.gguf weight\nmodel.safetensors weight\nmodel.bin weight"},
		{"older cnai names", manifestJSON("application/vnd.cnai.model.config.v1+json", "application/vnd.cnai.model.manifest.v1+json",
			layer{mt: "application/vnd.cnai.model.weight.v1.tar", name: "model.safetensors", key: "org.cnai.model.filepath"},
			layer{mt: "application/vnd.cnai.model.weight.config.v1.raw", name: "config.json", key: "org.cnai.model.filepath"},
			layer{mt: "application/vnd.cnai.model.doc.v1.tar+gzip", name: "README.md", key: "org.cnai.model.filepath"},
		), model.FormatModelPack, "model.safetensors weight tar->.\nconfig.json weight-config\nREADME.md doc tar+gzip->."},
		{"cnai artifact type alone", manifestJSON("application/vnd.oci.empty.v1+json", "application/vnd.cnai.model.manifest.v1+json",
			named("application/vnd.cnai.model.weight.v1.raw", "w.safetensors"),
		), model.FormatModelPack, "w.safetensors weight"},
		{"kitops", manifestJSON(kitConfig, "",
			unnamed("application/vnd.kitops.modelkit.model.v1.tar+gzip"),
			unnamed("application/vnd.kitops.modelkit.modelpart.v1.tar"),
			unnamed("application/vnd.kitops.modelkit.modelpart.v1.tar"),
			unnamed("application/vnd.kitops.modelkit.code.v1.tar"),
			unnamed("application/vnd.kitops.modelkit.dataset.v1.tar+gzip"),
			unnamed("application/vnd.kitops.modelkit.docs.v1.tar"),
			unnamed("application/vnd.kitops.modelkit.prompts.v1.tar"),
		), model.FormatKitOps, `model.tar.gz weight tar+gzip->.
modelpart.tar weight tar->.
modelpart-2.tar weight tar->.
code.tar code tar->.
dataset.tar.gz dataset tar+gzip->.
docs.tar doc tar->.
prompts.tar other tar->.`},
		{"oras artifact", manifestJSON("application/vnd.oci.empty.v1+json", "application/vnd.example.model",
			titled("application/octet-stream", "model.safetensors"),
			titled("application/json", "config.json"),
			titled("application/vnd.oci.image.layer.v1.tar+gzip", "tokenizer"),
		), model.FormatArtifact, "model.safetensors other\nconfig.json other\ntokenizer other"},
		{"oras directory", manifestJSON("application/vnd.oci.empty.v1+json", "",
			titled("application/vnd.oci.image.layer.v1.tar", "config.json"),
			layer{mt: "application/vnd.oci.image.layer.v1.tar+gzip", name: "tokenizer", key: titleKey,
				ann: map[string]string{"io.deis.oras.content.unpack": "true", "io.deis.oras.content.digest": dg(77)}},
		), model.FormatArtifact, "config.json other\ntokenizer other tar+gzip->."},
		{"unknown layers in a model: titled kept, others skipped", manifestJSON(dmrConfigV01, "",
			unnamed("application/vnd.docker.ai.gguf.v3"),
			titled("application/vnd.example.readme", "README.md"),
			unnamed("application/vnd.example.unknown"),
			unnamed("application/vnd.oci.image.layer.v1.tar+gzip"),
			unnamed("application/vnd.docker.ai.model.file"),
		), model.FormatDocker, "model.gguf weight\nREADME.md other"},
		{"generated names step around given ones", manifestJSON(dmrConfigV01, "",
			unnamed("application/vnd.docker.ai.gguf.v3"),
			named("application/vnd.docker.ai.license", "LICENSE"),
			unnamed("application/vnd.docker.ai.license"),
		), model.FormatDocker, "model.gguf weight\nLICENSE license\nLICENSE-2 license"},
		{"paths are cleaned", manifestJSON(dmrConfigV02, "",
			named("application/vnd.docker.ai.safetensors", "./a//model.safetensors"),
			named("application/vnd.docker.ai.model.file", "a/config.json"),
		), model.FormatDocker, "a/model.safetensors weight\na/config.json weight-config"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mustParse(t, c.raw)
			if m.Format != c.format {
				t.Errorf("format %q, want %q", m.Format, c.format)
			}
			if got := fileList(m.Files); got != c.files {
				t.Errorf("files:\n%s\nwant:\n%s", got, c.files)
			}
			var sum int64
			for _, f := range m.Files {
				sum += f.Size
			}
			if m.TotalSize != sum {
				t.Errorf("TotalSize %d, files add up to %d", m.TotalSize, sum)
			}
		})
	}
}

func TestParseSkipsWithReasons(t *testing.T) {
	m := mustParse(t, manifestJSON(dmrConfigV01, "",
		unnamed("application/vnd.docker.ai.gguf.v3"),
		unnamed("application/vnd.example.unknown"),
		unnamed("application/vnd.oci.image.layer.v1.tar+gzip"),
		unnamed("application/vnd.docker.ai.model.file"),
		unnamed("application/vnd.cncf.model.doc.v1.raw"),
	))
	want := []string{
		`unknown media type "application/vnd.example.unknown"`,
		"container image layer",
		"weight-config layer without a file name",
		"doc layer without a file name",
	}
	if len(m.Skipped) != len(want) {
		t.Fatalf("skipped %+v", m.Skipped)
	}
	for i, s := range m.Skipped {
		if !strings.Contains(s.Reason, want[i]) || s.Digest != dg(i+2) || s.MediaType == "" {
			t.Errorf("skipped[%d] = %+v, want reason with %q", i, s, want[i])
		}
	}
}

func TestParseSameBlobTwice(t *testing.T) {
	raw := []byte(strings.Replace(string(manifestJSON(dmrConfigV02, "",
		named("application/vnd.docker.ai.safetensors", "m.safetensors"),
		named("application/vnd.docker.ai.safetensors", "m.safetensors"),
	)), dg(2), dg(1), 1))
	m := mustParse(t, raw)
	if len(m.Files) != 1 || len(m.Skipped) != 1 || m.TotalSize != 100 {
		t.Errorf("files %v skipped %v total %d", m.Files, m.Skipped, m.TotalSize)
	}
}

func TestParseKitfile(t *testing.T) {
	raw := manifestJSON(kitConfig, "",
		unnamed("application/vnd.kitops.modelkit.model.v1.tar"),
		unnamed("application/vnd.kitops.modelkit.modelpart.v1.tar"),
		unnamed("application/vnd.kitops.modelkit.code.v1.tar"),
		unnamed("application/vnd.kitops.modelkit.docs.v1.tar+gzip"),
		unnamed("application/vnd.kitops.modelkit.dataset.v1.tar"),
	)
	cases := []struct {
		name    string
		kitfile string
		files   string
		err     error
	}{
		{"kit 0.5 and later: entries relative to the root",
			`{"manifestVersion":"1.0.0","package":{"name":"llama"},
			  "model":{"name":"llama","path":"models/llama.gguf","digest":"` + dg(1) + `","diffId":"` + dg(91) + `",
			           "parts":[{"path":"./lora/adapter.gguf","digest":"` + dg(2) + `"}]},
			  "code":[{"path":".","digest":"` + dg(3) + `"}],
			  "docs":[{"path":"README.md","digest":"` + dg(4) + `"}],
			  "datasets":[{"name":"eval","path":"data/eval","digest":"` + dg(5) + `"}]}`,
			`models/llama.gguf weight tar->.
lora/adapter.gguf weight tar->.
code.tar code tar->.
README.md doc tar+gzip->.
data/eval dataset tar->.`, nil},
		{"before kit 0.5: entries relative to the layer's directory",
			`{"model":{"path":"models/llama.gguf","parts":[{"path":"lora/adapter.gguf"}]},
			  "code":[{"path":"."}],"docs":[{"path":"README.md"}],"datasets":[{"path":"data/sets/eval"}]}`,
			`models/llama.gguf weight tar->models
lora/adapter.gguf weight tar->lora
code.tar code tar->.
README.md doc tar+gzip->.
data/sets/eval dataset tar->data/sets`, nil},
		{"a digest that is not the layer's", `{"model":{"path":"m","digest":"` + dg(9) + `"},"model_parts":[]}`, "", model.ErrBadManifest},
		{"a layer the Kitfile does not list", `{"model":{"path":"m"},"code":[{"path":"c"}]}`, "", model.ErrBadManifest},
		{"an unsafe path", `{"model":{"path":"../m","parts":[{"path":"p"}]},"code":[{"path":"c"}],"docs":[{"path":"d"}],"datasets":[{"path":"s"}]}`, "", model.ErrBadManifest},
		{"not JSON", `model: {path: m}`, "", model.ErrBadManifest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := model.ParseWithConfig(raw, ociManifest, []byte(c.kitfile))
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fileList(m.Files); got != c.files {
				t.Errorf("files:\n%s\nwant:\n%s", got, c.files)
			}
		})
	}
	// Other formats ignore the config.
	if _, err := model.ParseWithConfig([]byte(dmrV01), ociManifest, []byte("not json")); err != nil {
		t.Errorf("docker model with a config: %v", err)
	}
}

func TestParseRefuses(t *testing.T) {
	good := string(manifestJSON(dmrConfigV01, "", unnamed("application/vnd.docker.ai.gguf.v3")))
	cases := []struct {
		name       string
		raw        string
		mediaType  string
		err        error
		msg        string
		unsafePath bool
	}{
		{"container image", `{"schemaVersion":2,"mediaType":"` + dockerManifest + `",
			"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"` + dg(1) + `","size":7023},
			"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"` + dg(2) + `","size":32654}]}`,
			dockerManifest, model.ErrNotModel, "container image", false},
		{"OCI container image", string(manifestJSON("application/vnd.oci.image.config.v1+json", "",
			unnamed("application/vnd.oci.image.layer.v1.tar+gzip"))), ociManifest, model.ErrNotModel, "container image", false},
		{"helm chart", string(manifestJSON("application/vnd.cncf.helm.config.v1+json", "",
			unnamed("application/vnd.cncf.helm.chart.content.v1.tar+gzip"))), ociManifest, model.ErrNotModel, "no layer", false},
		{"a model whose layers are all unusable", string(manifestJSON(dmrConfigV01, "",
			unnamed("application/vnd.docker.ai.model.file"))), ociManifest, model.ErrNotModel, "no usable layer", false},
		{"no layers", `{"schemaVersion":2,"config":{"mediaType":"` + dmrConfigV01 + `","digest":"` + dg(1) + `","size":1},"layers":[]}`,
			ociManifest, model.ErrNotModel, "no layers", false},

		{"parent directory", string(manifestJSON(dmrConfigV02, "", named("application/vnd.docker.ai.safetensors", "../x"))), ociManifest, model.ErrBadManifest, "..", true},
		{"absolute", string(manifestJSON(dmrConfigV02, "", named("application/vnd.docker.ai.safetensors", "/etc/passwd"))), ociManifest, model.ErrBadManifest, "absolute", true},
		{"backslash", string(manifestJSON(dmrConfigV02, "", named("application/vnd.docker.ai.safetensors", `a\b`))), ociManifest, model.ErrBadManifest, "backslash", true},
		{"title escapes", string(manifestJSON("application/vnd.oci.empty.v1+json", "", titled("application/octet-stream", "a/../../b"))), ociManifest, model.ErrBadManifest, "..", true},
		{"a raw file named the root", string(manifestJSON(mpConfig, mpManifest, named("application/vnd.cncf.model.weight.v1.raw", "./"))), ociManifest, model.ErrBadManifest, "model root", false},
		{"duplicate paths", string(manifestJSON(dmrConfigV02, "",
			named("application/vnd.docker.ai.safetensors", "model.safetensors"),
			named("application/vnd.docker.ai.model.file", "./model.safetensors"))), ociManifest, model.ErrBadManifest, `both "model.safetensors"`, false},
		{"an archive at a file's path", string(manifestJSON(mpConfig, mpManifest,
			named("application/vnd.cncf.model.weight.v1.raw", "config.json"),
			named("application/vnd.cncf.model.weight.config.v1.tar", "config.json"))), ociManifest, model.ErrBadManifest, "both", false},
		{"a generated name that a layer has", string(manifestJSON(dmrConfigV01, "",
			named("application/vnd.docker.ai.gguf.v3", "model.gguf"),
			unnamed("application/vnd.docker.ai.gguf.v3"))), ociManifest, model.ErrBadManifest, "both", false},
		{"a file where a directory must be", string(manifestJSON(dmrConfigV02, "",
			named("application/vnd.docker.ai.model.file", "tokenizer"),
			named("application/vnd.docker.ai.model.file", "tokenizer/vocab.json"))), ociManifest, model.ErrBadManifest, "directory", false},

		{"not JSON", `{"schemaVersion":2,`, ociManifest, model.ErrBadManifest, "", false},
		{"JSON null", `null`, ociManifest, model.ErrBadManifest, "schemaVersion", false},
		{"an array", `[]`, ociManifest, model.ErrBadManifest, "", false},
		{"schema 1", `{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}`, "application/vnd.docker.distribution.manifest.v1+prettyjws", model.ErrBadManifest, "schema 1", false},
		{"schemaVersion 3", strings.Replace(good, `"schemaVersion":2`, `"schemaVersion":3`, 1), ociManifest, model.ErrBadManifest, "schemaVersion", false},
		{"no config", `{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.docker.ai.gguf.v3","digest":"` + dg(1) + `","size":1}]}`, ociManifest, model.ErrBadManifest, "config", false},
		{"upper-case digest", strings.Replace(good, dg(1), strings.ToUpper(dg(1)), 1), ociManifest, model.ErrBadManifest, "digest", false},
		{"short digest", strings.Replace(good, dg(1), "sha256:abc", 1), ociManifest, model.ErrBadManifest, "digest", false},
		{"md5 digest", strings.Replace(good, dg(1), "md5:d41d8cd98f00b204e9800998ecf8427e", 1), ociManifest, model.ErrBadManifest, "digest", false},
		{"bad config digest", strings.Replace(good, dg(1000), "sha256:"+strings.Repeat("g", 64), 1), ociManifest, model.ErrBadManifest, "config", false},
		{"negative size", strings.Replace(good, `"size":100`, `"size":-1`, 1), ociManifest, model.ErrBadManifest, "negative", false},
		{"fractional size", strings.Replace(good, `"size":100`, `"size":1.5`, 1), ociManifest, model.ErrBadManifest, "", false},
		{"sizes that overflow", strings.Replace(strings.Replace(string(manifestJSON(dmrConfigV01, "",
			unnamed("application/vnd.docker.ai.gguf.v3"), unnamed("application/vnd.docker.ai.gguf.v3"))),
			`"size":100`, `"size":9223372036854775807`, 1), `"size":200`, `"size":9223372036854775807`, 1), ociManifest, model.ErrBadManifest, "2^63", false},
		{"annotations of the wrong type", strings.Replace(good, `"layers":[{`, `"layers":[{"annotations":{"a":1},`, 1), ociManifest, model.ErrBadManifest, "", false},
		{"an index", `{"schemaVersion":2,"mediaType":"` + ociIndex + `","manifests":[]}`, ociIndex, model.ErrBadManifest, "index", false},
		{"an index without mediaType", `{"schemaVersion":2,"manifests":[{"mediaType":"` + ociManifest + `","digest":"` + dg(1) + `","size":1}]}`, "", model.ErrBadManifest, "index", false},
		{"served as another type", good, dockerManifest, model.ErrBadManifest, "served as", false},
		{"an unknown manifest type", strings.Replace(good, ociManifest, "application/vnd.example.manifest", 1), "", model.ErrBadManifest, "unsupported", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := model.Parse([]byte(c.raw), c.mediaType)
			if !errors.Is(err, c.err) {
				t.Fatalf("Parse = %+v, %v; want %v", m, err, c.err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
			var pe *safepath.Error
			if errors.As(err, &pe) != c.unsafePath {
				t.Errorf("error %q: *safepath.Error %v, want %v", err, !c.unsafePath, c.unsafePath)
			}
		})
	}
}

func TestParseManifestTypes(t *testing.T) {
	digests := `"config":{"mediaType":"` + dmrConfigV01 + `","digest":"` + dg(1) + `","size":1},
		"layers":[{"mediaType":"application/vnd.docker.ai.gguf.v3","digest":"` + dg(2) + `","size":5}]`
	cases := []struct {
		name, raw, served, want string
	}{
		{"docker v2", `{"schemaVersion":2,"mediaType":"` + dockerManifest + `",` + digests + `}`, dockerManifest, dockerManifest},
		{"no mediaType in the body", `{"schemaVersion":2,` + digests + `}`, dockerManifest, dockerManifest},
		{"served with parameters", `{"schemaVersion":2,"mediaType":"` + ociManifest + `",` + digests + `}`, ociManifest + "; charset=utf-8", ociManifest},
		{"served as plain JSON", `{"schemaVersion":2,"mediaType":"` + ociManifest + `",` + digests + `}`, "application/json", ociManifest},
		{"no media type at all", `{"schemaVersion":2,` + digests + `}`, "", ociManifest},
		{"sha512", strings.Replace(`{"schemaVersion":2,`+digests+`}`, dg(2), "sha512:"+strings.Repeat("ab", 64), 1), "", ociManifest},
		{"OCI artifact manifest (early oras)", `{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","artifactType":"application/vnd.example",
			"blobs":[{"mediaType":"application/octet-stream","digest":"` + dg(2) + `","size":5,"annotations":{"` + titleKey + `":"model.gguf"}}]}`,
			"application/vnd.oci.artifact.manifest.v1+json", "application/vnd.oci.artifact.manifest.v1+json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := model.Parse([]byte(c.raw), c.served)
			if err != nil {
				t.Fatal(err)
			}
			if m.ManifestType != c.want || len(m.Files) != 1 || m.TotalSize != 5 {
				t.Errorf("manifest type %q, files %+v", m.ManifestType, m.Files)
			}
		})
	}
}

func TestModelJSON(t *testing.T) {
	m, err := model.Parse([]byte(dmrV01), ociManifest)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"format":"docker"`, `"manifest_media_type":`, `"config_descriptor":{"mediaType":`, `"files":[{"path":"model.gguf"`, `"media_type":`, `"kind":"weight"`, `"total_size":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s lacks %s", b, key)
		}
	}
	for _, absent := range []string{`"skipped"`, `"archive"`, `"extract_to"`, `"artifact_type"`} {
		if strings.Contains(string(b), absent) {
			t.Errorf("%s has %s", b, absent)
		}
	}
}
