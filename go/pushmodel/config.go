package pushmodel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/oci-client/liboci/model"
)

// maxSafetensorsHeader bounds the JSON header read from a safetensors file
// (the format's own limit is 100 MB).
const maxSafetensorsHeader = 100 << 20

// described is what the directory says about the model.
type described struct {
	format     string           // "safetensors", "gguf" or ""
	params     int64            // safetensors: from the headers; 0 when unknown
	dtypeBytes map[string]int64 // safetensors dtype -> bytes of tensors holding it
	weightSize int64            // bytes of the weight files of format
	size       int64            // bytes of all the files
	// the first safetensors file's __metadata__ (as strings) and tensor
	// count, which Docker's packager copies into config.safetensors
	stMetadata map[string]string
	hf         hfConfigInfo
	gguf       *ggufHeader // the first GGUF weight file's header, with its shards' tensors added
}

func describe(files []file) described {
	d := described{dtypeBytes: map[string]int64{}}
	var ggufs []file
	for _, f := range files {
		d.size += f.size
		if f.rel == "config.json" {
			d.hf = hfConfig(f.abs)
		}
		if f.kind != model.KindWeight {
			continue
		}
		switch strings.ToLower(path.Ext(f.rel)) {
		case ".safetensors":
			// Safetensors weights make it a safetensors model even beside
			// GGUF conversions of it (an HF repository's gguf/ folder).
			d.format = "safetensors"
			h, err := safetensorsParams(f.abs)
			if err != nil {
				continue
			}
			for dtype, n := range h.bytes {
				d.dtypeBytes[dtype] += n
			}
			d.params += h.params
			if d.stMetadata == nil {
				d.stMetadata = h.metadata
			}
		case ".gguf":
			if d.format == "" {
				d.format = "gguf"
			}
			ggufs = append(ggufs, f)
		}
	}
	for _, f := range files {
		if f.kind == model.KindWeight && strings.EqualFold(path.Ext(f.rel), "."+d.format) {
			d.weightSize += f.size
		}
	}
	if d.format == "gguf" {
		d.gguf = describeGGUF(ggufs)
	}
	return d
}

var ggufShard = regexp.MustCompile(`^(.*)-\d{5}-of-(\d{5})\.gguf$`)

// describeGGUF reads the first GGUF file (in name order, as Docker's
// packager does) and the other shards of the same split model, whose
// tensors and data count too; a directory holding several quantizations
// of one model is described by the first.
func describeGGUF(ggufs []file) *ggufHeader {
	slices.SortFunc(ggufs, func(a, b file) int { return strings.Compare(a.rel, b.rel) })
	if len(ggufs) == 0 {
		return nil
	}
	h, err := readGGUFHeader(ggufs[0].abs)
	if err != nil {
		return nil
	}
	m := ggufShard.FindStringSubmatch(ggufs[0].rel)
	if m == nil {
		return h
	}
	for _, f := range ggufs[1:] {
		if s := ggufShard.FindStringSubmatch(f.rel); s != nil && s[1] == m[1] && s[2] == m[2] {
			if shard, err := readGGUFHeader(f.abs); err == nil {
				h.elements += shard.elements
				h.dataSize += shard.dataSize
			}
		}
	}
	return h
}

// safetensorsHeader is what a safetensors header says.
type safetensorsHeader struct {
	params   int64
	bytes    map[string]int64 // dtype -> bytes of its tensors
	metadata map[string]string
}

// safetensorsParams reads a safetensors file's header (8 bytes of
// little-endian length, then JSON): the parameters, and the bytes each
// dtype holds (from data_offsets, or shape times the dtype's width).
func safetensorsParams(p string) (*safetensorsHeader, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, err
	}
	if n == 0 || n > maxSafetensorsHeader {
		return nil, fmt.Errorf("%s: safetensors header of %d bytes", p, n)
	}
	var header map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(f, int64(n))).Decode(&header); err != nil {
		return nil, err
	}
	h := &safetensorsHeader{bytes: map[string]int64{}, metadata: map[string]string{}}
	tensors := 0
	for name, raw := range header {
		if name == "__metadata__" {
			var meta map[string]any
			if json.Unmarshal(raw, &meta) == nil {
				for k, v := range meta {
					h.metadata[k] = fmt.Sprintf("%v", v)
				}
			}
			continue
		}
		var t struct {
			Dtype   string   `json:"dtype"`
			Shape   []int64  `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if json.Unmarshal(raw, &t) != nil {
			continue
		}
		tensors++
		elems := int64(1)
		for _, dim := range t.Shape {
			elems *= dim
		}
		h.params += elems
		if t.Dtype == "" {
			continue
		}
		size := t.Offsets[1] - t.Offsets[0]
		if size <= 0 {
			size = elems
		}
		h.bytes[t.Dtype] += size
	}
	h.metadata["tensor_count"] = strconv.Itoa(tensors)
	return h, nil
}

// hfConfigInfo is what an HF config.json says that the configs use.
type hfConfigInfo struct {
	architectures []string
	modelType     string
	quantMethod   string // quantization_config.quant_method: "awq", "gptq", "fp8", ...
	contextSize   int32  // 0 when not said
}

// hfContextKeys are the config.json keys that may hold the context length,
// in the order Docker's packager tries them (after llama.cpp's
// convert_hf_to_gguf.py).
var hfContextKeys = []string{
	"max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length",
}

func hfConfig(p string) hfConfigInfo {
	var info hfConfigInfo
	b, err := os.ReadFile(p)
	if err != nil || len(b) > 16<<20 {
		return info
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return info
	}
	_ = json.Unmarshal(raw["architectures"], &info.architectures)
	_ = json.Unmarshal(raw["model_type"], &info.modelType)
	var q struct {
		QuantMethod string `json:"quant_method"`
	}
	if json.Unmarshal(raw["quantization_config"], &q) == nil {
		info.quantMethod = q.QuantMethod
	}
	for _, key := range hfContextKeys {
		var n int64
		if json.Unmarshal(raw[key], &n) == nil && n > 0 && n <= math.MaxInt32 {
			info.contextSize = int32(n)
			break
		}
	}
	return info
}

// notTransformers are model types (HF model_type, and llama.cpp's
// general.architecture, which mostly share names) of models that are not
// transformers: recurrent networks, and state-space models, which
// model-spec's vocabulary has no word for.
var notTransformers = map[string]string{
	"rwkv": "rnn", "rwkv5": "rnn", "rwkv6": "rnn", "rwkv7": "rnn", "arwkv7": "rnn", "rwkv6qwen2": "rnn",
	"xlstm": "rnn", "mamba": "", "mamba2": "", "falcon_mamba": "",
}

// specArchitecture is model-spec's architecture ("transformer", "rnn", ...)
// for a model of the given type; HF and llama.cpp models are transformers
// unless the type says otherwise.
func specArchitecture(modelType string, known bool) string {
	if a, ok := notTransformers[strings.ToLower(modelType)]; ok {
		return a
	}
	if known {
		return "transformer"
	}
	return ""
}

// paramSize writes a parameter count as model-spec's paramSize: at most
// one digit after the point, and a scale letter ("7.2B", "350M").
func paramSize(n int64) string {
	switch {
	case n <= 0:
		return ""
	case n >= 1e12:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e12)) + "T"
	case n >= 1e9:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e9)) + "B"
	case n >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e6)) + "M"
	case n >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e3)) + "K"
	}
	return fmt.Sprint(n)
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// modelPackConfig is application/vnd.cncf.model.config.v1+json (ModelPack
// model-spec v1 config.md). No timestamps: the same directory publishes to
// the same digests, so publishing it again changes nothing. The schema
// allows no other fields, so the HF class name (LlamaForCausalLM) has no
// place in it: it stays in the published config.json.
func modelPackConfig(d described, name string, diffIDs []string) ([]byte, error) {
	type cfg struct {
		Architecture string `json:"architecture,omitempty"`
		Format       string `json:"format,omitempty"`
		ParamSize    string `json:"paramSize,omitempty"`
		Precision    string `json:"precision,omitempty"`
		Quantization string `json:"quantization,omitempty"`
	}
	doc := struct {
		Descriptor struct {
			Family string `json:"family,omitempty"`
			Name   string `json:"name,omitempty"`
		} `json:"descriptor"`
		Config  cfg `json:"config"`
		ModelFS struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diffIds"`
		} `json:"modelfs"`
	}{}
	doc.Descriptor.Name = name
	c := cfg{Format: d.format}
	if g := d.gguf; g != nil {
		arch := ggufArchitecture(g)
		doc.Descriptor.Family = arch
		c.Architecture = specArchitecture(arch, arch != "")
		c.ParamSize = paramSize(g.elements)
		fileType, ok := g.numbers["general.file_type"]
		c.Precision, c.Quantization = ggufSpecQuantization(fileType, ok)
	} else {
		doc.Descriptor.Family = d.hf.modelType
		c.Architecture = specArchitecture(d.hf.modelType, d.hf.modelType != "" || len(d.hf.architectures) > 0)
		c.ParamSize = paramSize(d.params)
		c.Precision = precisionList(d.dtypeBytes)
		c.Quantization = d.hf.quantMethod
	}
	doc.Config = c
	doc.ModelFS.Type = "layers"
	doc.ModelFS.DiffIDs = diffIDs
	return json.Marshal(doc)
}

// ggufArchitecture is the model's llama.cpp architecture ("llama", "qwen2"),
// as gguf-parser-go reads it: a control vector names the model it applies to.
func ggufArchitecture(g *ggufHeader) string {
	if a := g.kv["controlvector.model_hint"]; a != "" {
		return strings.TrimSpace(a)
	}
	return strings.TrimSpace(g.kv["general.architecture"])
}

// dockerParameters writes a parameter count as Docker's packager does for
// safetensors (go-units CustomSize "%.2f%s", base 1000): "1.24B", "183.00".
func dockerParameters(n int64) string {
	return customSize(float64(n), []string{"", "K", "M", "B", "T"})
}

// dockerSize writes a size in bytes as Docker's packager does for
// safetensors: "2.47GB", "864.00B"; "n/a" for nothing.
func dockerSize(n int64) string {
	if n <= 0 {
		return "n/a"
	}
	return customSize(float64(n), []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"})
}

func customSize(v float64, units []string) string {
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return fmt.Sprintf("%.2f%s", v, units[i])
}

// ggufScalar writes a GGUF count as gguf-parser-go does for Docker's
// packager (two decimals, ".00" dropped, the first unit the value reaches),
// with the space before the unit removed as Docker does: "183", "8.03B",
// "4.58GiB".
func ggufScalar(n int64, units []struct {
	base float64
	unit string
}, suffix string) string {
	if n == 0 {
		return "0" + strings.TrimSpace(suffix)
	}
	b, u := 1.0, ""
	for _, x := range units {
		if float64(n) >= x.base {
			b, u = x.base, x.unit
			break
		}
	}
	return strings.TrimSuffix(strconv.FormatFloat(float64(n)/b, 'f', 2, 64), ".00") + u + suffix
}

var (
	ggufCountUnits = []struct {
		base float64
		unit string
	}{{1e15, "Q"}, {1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}}
	ggufByteUnits = []struct {
		base float64
		unit string
	}{{1 << 50, "Pi"}, {1e15, "P"}, {1 << 40, "Ti"}, {1e12, "T"}, {1 << 30, "Gi"}, {1e9, "G"}, {1 << 20, "Mi"}, {1e6, "M"}, {1 << 10, "Ki"}, {1e3, "K"}}
)

// dockerConfig is Docker Model Runner's application/vnd.docker.ai.model.config.v0.2+json,
// with the fields Docker's packager (model-runner pkg/distribution/format)
// fills, formatted as it formats them. No created time, for the same
// reason as modelPackConfig.
func dockerConfig(d described, diffIDs []string) ([]byte, error) {
	type cfg struct {
		Format       string            `json:"format,omitempty"`
		Quantization string            `json:"quantization,omitempty"`
		Parameters   string            `json:"parameters,omitempty"`
		Architecture string            `json:"architecture,omitempty"`
		Size         string            `json:"size,omitempty"`
		GGUF         map[string]string `json:"gguf,omitempty"`
		Safetensors  map[string]string `json:"safetensors,omitempty"`
		ContextSize  *int32            `json:"context_size,omitempty"`
	}
	doc := struct {
		Config     cfg      `json:"config"`
		Descriptor struct{} `json:"descriptor"`
		RootFS     struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}{}
	c := cfg{Format: d.format}
	switch {
	case d.gguf != nil:
		g := d.gguf
		c.Parameters = ggufScalar(g.elements, ggufCountUnits, "")
		c.Architecture = ggufArchitecture(g)
		fileType, ok := g.numbers["general.file_type"]
		c.Quantization = ggufFileType(fileType, ok)
		c.Size = ggufScalar(g.dataSize, ggufByteUnits, "B")
		c.GGUF = g.kv
		if n, ok := g.numbers[c.Architecture+".context_length"]; ok && n > 0 && n <= math.MaxInt32 {
			ctx := int32(n)
			c.ContextSize = &ctx
		}
	case d.format == "safetensors":
		c.Parameters = dockerParameters(d.params)
		c.Quantization = dockerQuantization(d.dtypeBytes)
		c.Size = dockerSize(d.weightSize)
		c.Safetensors = d.stMetadata
		// Docker's packager takes the architecture from the safetensors
		// metadata, which HF checkpoints seldom set; config.json's
		// model_type is the same kind of name (what GGUF models give), and
		// Model Runner shows it as the family.
		c.Architecture = d.stMetadata["architecture"]
		if c.Architecture == "" {
			c.Architecture = d.hf.modelType
		}
		if d.hf.contextSize > 0 {
			ctx := d.hf.contextSize
			c.ContextSize = &ctx
		}
	}
	doc.Config = c
	doc.RootFS.Type = "rootfs"
	doc.RootFS.DiffIDs = diffIDs
	return json.Marshal(doc)
}
