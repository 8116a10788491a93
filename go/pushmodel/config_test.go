package pushmodel

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// stFile builds a safetensors file holding tensors of the given dtype and
// shape, with zeros for data.
func stFile(t *testing.T, meta map[string]string, tensors map[string]struct {
	dtype string
	shape []int
}) []byte {
	t.Helper()
	width := map[string]int{"BF16": 2, "F16": 2, "F32": 4, "I8": 1}
	header := map[string]any{}
	if meta != nil {
		header["__metadata__"] = meta
	}
	off := 0
	for _, name := range sortedKeys(tensors) {
		tt := tensors[name]
		n := width[tt.dtype]
		for _, d := range tt.shape {
			n *= d
		}
		header[name] = map[string]any{"dtype": tt.dtype, "shape": tt.shape, "data_offsets": []int{off, off + n}}
		off += n
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(h)))
	b.Write(h)
	b.Write(make([]byte, off))
	return b.Bytes()
}

func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

type tensor = struct {
	dtype string
	shape []int
}

func writeDir(t *testing.T, files map[string][]byte) []file {
	t.Helper()
	dir := t.TempDir()
	for rel, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	listed, err := listFiles(dir, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return listed
}

var schema = func() *jsonschema.Schema {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile("testdata/config-schema.json")
	if err != nil {
		panic(err)
	}
	return s
}()

// configs gives the ModelPack config (checked against model-spec's JSON
// schema) and the Docker config of a directory.
func configs(t *testing.T, files []file) (mp, docker map[string]any) {
	t.Helper()
	d := describe(files)
	diffIDs := []string{"sha256:" + strings.Repeat("a", 64)}
	raw, err := modelPackConfig(d, "model", diffIDs)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Errorf("ModelPack config %s does not validate: %v", raw, err)
	}
	if err := json.Unmarshal(raw, &mp); err != nil {
		t.Fatal(err)
	}
	raw, err = dockerConfig(d, diffIDs)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &docker); err != nil {
		t.Fatal(err)
	}
	return mp, docker
}

func equalJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(got)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(g, wb) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, wb)
	}
}

func TestHFSafetensorsConfig(t *testing.T) {
	files := writeDir(t, map[string][]byte{
		"config.json": []byte(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","max_position_embeddings":8192}`),
		"model-00001-of-00002.safetensors": stFile(t, map[string]string{"format": "pt"},
			map[string]tensor{"a": {"BF16", []int{1000, 1000}}}),
		"model-00002-of-00002.safetensors": stFile(t, nil, map[string]tensor{"b": {"BF16", []int{500, 1000}}}),
	})
	mp, docker := configs(t, files)
	equalJSON(t, "ModelPack descriptor", mp["descriptor"], `{"family":"llama","name":"model"}`)
	equalJSON(t, "ModelPack config", mp["config"],
		`{"architecture":"transformer","format":"safetensors","paramSize":"1.5M","precision":"bfloat16"}`)
	equalJSON(t, "Docker config", docker["config"], `{"format":"safetensors","quantization":"BF16",
		"parameters":"1.50M","architecture":"llama","size":"3.00MB",
		"safetensors":{"format":"pt","tensor_count":"1"},"context_size":8192}`)
}

func TestMixedPrecisionIsListedDominantFirst(t *testing.T) {
	files := writeDir(t, map[string][]byte{
		"config.json": []byte(`{"architectures":["LlamaForCausalLM"],"model_type":"llama",
			"quantization_config":{"quant_method":"gptq"}}`),
		"model.safetensors": stFile(t, nil, map[string]tensor{
			"w":    {"BF16", []int{1000, 1000}}, // 2 MB
			"norm": {"F32", []int{1000}},        // 4 kB
			"q":    {"I8", []int{3000, 1000}},   // 3 MB
		}),
	})
	mp, docker := configs(t, files)
	cfg := mp["config"].(map[string]any)
	if cfg["precision"] != "int8,bfloat16,float32" || cfg["quantization"] != "gptq" || cfg["paramSize"] != "4M" {
		t.Errorf("ModelPack config %v", cfg)
	}
	if q := docker["config"].(map[string]any)["quantization"]; q != "mixed" {
		t.Errorf("Docker quantization %v, want mixed", q)
	}
}

func TestNotATransformer(t *testing.T) {
	files := writeDir(t, map[string][]byte{
		"config.json":       []byte(`{"architectures":["MambaForCausalLM"],"model_type":"mamba"}`),
		"model.safetensors": stFile(t, nil, map[string]tensor{"w": {"F32", []int{10}}}),
	})
	mp, _ := configs(t, files)
	if a, ok := mp["config"].(map[string]any)["architecture"]; ok {
		t.Errorf("a Mamba model is called %v", a)
	}
	if mp["descriptor"].(map[string]any)["family"] != "mamba" {
		t.Errorf("descriptor %v", mp["descriptor"])
	}
}

func TestGGUFConfig(t *testing.T) {
	g := ggufFile{version: 3}
	g.kv("general.architecture", ggufString, "qwen2")
	g.kv("general.file_type", ggufUint32, uint32(15))
	g.kv("general.size_label", ggufString, "0.5B")
	g.kv("qwen2.context_length", ggufUint32, uint32(32768))
	g.kv("qwen2.rope.freq_base", ggufFloat32, float32(1000000))
	g.tensor("token_embd.weight", 896, 1000)
	g.tensor("blk.0.attn_q.weight", 896, 896)
	files := writeDir(t, map[string][]byte{
		"model-Q4_K_M.gguf": g.bytes(t, 4096),
		"README.md":         []byte("# model\n"),
	})
	mp, docker := configs(t, files)
	equalJSON(t, "ModelPack descriptor", mp["descriptor"], `{"family":"qwen2","name":"model"}`)
	equalJSON(t, "ModelPack config", mp["config"],
		`{"architecture":"transformer","format":"gguf","paramSize":"1.7M","quantization":"Q4_K_M"}`)
	equalJSON(t, "Docker config", docker["config"], `{"format":"gguf","quantization":"MOSTLY_Q4_K_M",
		"parameters":"1.70M","architecture":"qwen2","size":"4KiB","context_size":32768,
		"gguf":{"general.architecture":"qwen2","general.file_type":"15","general.size_label":"0.5B",
		"qwen2.context_length":"32768","qwen2.rope.freq_base":"1000000.000000"}}`)
}

func TestGGUFFloatFileIsAPrecision(t *testing.T) {
	g := ggufFile{version: 3}
	g.kv("general.architecture", ggufString, "llama")
	g.kv("general.file_type", ggufUint32, uint32(32))
	files := writeDir(t, map[string][]byte{"m.gguf": g.bytes(t, 0)})
	mp, docker := configs(t, files)
	cfg := mp["config"].(map[string]any)
	if cfg["precision"] != "bfloat16" || cfg["quantization"] != nil {
		t.Errorf("ModelPack config %v", cfg)
	}
	if q := docker["config"].(map[string]any)["quantization"]; q != "MOSTLY_BF16" {
		t.Errorf("Docker quantization %v", q)
	}
}

func TestDockerFormatting(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{dockerParameters(183), "183.00"},
		{dockerParameters(7_000_000_000), "7.00B"},
		{dockerSize(0), "n/a"},
		{dockerSize(1500), "1.50kB"},
		{dockerSize(4_300_000_000), "4.30GB"},
		{ggufScalar(183, ggufCountUnits, ""), "183"},
		{ggufScalar(8_030_261_248, ggufCountUnits, ""), "8.03B"},
		{ggufScalar(864, ggufByteUnits, "B"), "864B"},
		{ggufScalar(4_920_000_000, ggufByteUnits, "B"), "4.58GiB"},
		{ggufScalar(1_000_000_000, ggufByteUnits, "B"), "1GB"},
		{ggufFileType(15, true), "MOSTLY_Q4_K_M"},
		{ggufFileType(0, false), "Unknown"},
		{ggufFileType(99, true), "GGUFFileType(99)"},
		{paramSize(1_234_567_890_123), "1.2T"},
		{precisionList(map[string]int64{"F16": 10, "F8_E4M3": 20}), "float8_e4m3,float16"},
		{specPrecision(strings.ToLower("U8")), "uint8"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
