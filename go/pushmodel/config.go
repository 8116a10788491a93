package pushmodel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/oci-client/liboci/model"
)

// maxSafetensorsHeader bounds the JSON header read from a safetensors file
// (the format's own limit is 100 MB).
const maxSafetensorsHeader = 100 << 20

// described is what the directory says about the model.
type described struct {
	format       string // "safetensors", "gguf" or ""
	params       int64  // from the safetensors headers; 0 when unknown
	precision    string // the dtype holding most parameters ("bf16", ...)
	architecture string // config.json "architectures"[0]
	modelType    string // config.json "model_type"
	size         int64
}

func describe(files []file) described {
	var d described
	byDtype := map[string]int64{}
	for _, f := range files {
		d.size += f.size
		switch strings.ToLower(path.Ext(f.rel)) {
		case ".safetensors":
			d.format = "safetensors"
			if counts, err := safetensorsParams(f.abs); err == nil {
				for dtype, n := range counts {
					byDtype[dtype] += n
					d.params += n
				}
			}
		case ".gguf":
			if d.format == "" && f.kind == model.KindWeight {
				d.format = "gguf"
			}
		}
		if f.rel == "config.json" {
			d.architecture, d.modelType = hfConfig(f.abs)
		}
	}
	var most int64
	for dtype, n := range byDtype {
		if n > most || (n == most && dtype < d.precision) {
			most, d.precision = n, precisionName(dtype)
		}
	}
	return d
}

// safetensorsParams counts the parameters of each dtype in a safetensors
// file's header: 8 bytes of little-endian length, then JSON.
func safetensorsParams(p string) (map[string]int64, error) {
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
	counts := map[string]int64{}
	for name, raw := range header {
		if name == "__metadata__" {
			continue
		}
		var t struct {
			Dtype string  `json:"dtype"`
			Shape []int64 `json:"shape"`
		}
		if json.Unmarshal(raw, &t) != nil {
			continue
		}
		elems := int64(1)
		for _, dim := range t.Shape {
			elems *= dim
		}
		counts[t.Dtype] += elems
	}
	return counts, nil
}

func precisionName(dtype string) string {
	switch strings.ToUpper(dtype) {
	case "BF16":
		return "bf16"
	case "F16":
		return "fp16"
	case "F32":
		return "fp32"
	case "F64":
		return "fp64"
	case "F8_E4M3", "F8_E5M2":
		return "fp8"
	}
	return strings.ToLower(dtype)
}

func hfConfig(p string) (architecture, modelType string) {
	b, err := os.ReadFile(p)
	if err != nil || len(b) > 16<<20 {
		return "", ""
	}
	var c struct {
		Architectures []string `json:"architectures"`
		ModelType     string   `json:"model_type"`
	}
	if json.Unmarshal(b, &c) != nil {
		return "", ""
	}
	if len(c.Architectures) > 0 {
		architecture = c.Architectures[0]
	}
	return architecture, c.ModelType
}

// paramSize writes a parameter count as model cards do: "7.2B", "350M".
func paramSize(n int64) string {
	switch {
	case n <= 0:
		return ""
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
// the same digests, so publishing it again changes nothing.
func modelPackConfig(d described, name string, diffIDs []string) ([]byte, error) {
	type cfg struct {
		Architecture string `json:"architecture,omitempty"`
		Format       string `json:"format,omitempty"`
		ParamSize    string `json:"paramSize,omitempty"`
		Precision    string `json:"precision,omitempty"`
	}
	doc := struct {
		Descriptor struct {
			Name string `json:"name,omitempty"`
		} `json:"descriptor"`
		Config  cfg `json:"config"`
		ModelFS struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diffIds"`
		} `json:"modelfs"`
	}{}
	doc.Descriptor.Name = name
	doc.Config = cfg{Architecture: d.architecture, Format: d.format, ParamSize: paramSize(d.params), Precision: d.precision}
	doc.ModelFS.Type = "layers"
	doc.ModelFS.DiffIDs = diffIDs
	return json.Marshal(doc)
}

// dockerConfig is Docker Model Runner's application/vnd.docker.ai.model.config.v0.2+json.
func dockerConfig(d described, diffIDs []string) ([]byte, error) {
	type cfg struct {
		Format       string `json:"format,omitempty"`
		Parameters   string `json:"parameters,omitempty"`
		Architecture string `json:"architecture,omitempty"`
		Size         string `json:"size,omitempty"`
	}
	doc := struct {
		Config     cfg      `json:"config"`
		Descriptor struct{} `json:"descriptor"`
		RootFS     struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}{}
	doc.Config = cfg{Format: d.format, Parameters: paramSize(d.params), Architecture: d.modelType, Size: fmt.Sprintf("%d", d.size)}
	doc.RootFS.Type = "rootfs"
	doc.RootFS.DiffIDs = diffIDs
	return json.Marshal(doc)
}
