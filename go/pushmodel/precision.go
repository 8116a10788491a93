package pushmodel

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// specPrecision is model-spec's name (docs/config.md, "precision") for a
// safetensors dtype. A dtype the spec has no name for keeps its own, in
// lower case, rather than being dropped or misnamed.
func specPrecision(dtype string) string {
	switch strings.ToUpper(dtype) {
	case "F64":
		return "float64"
	case "F32":
		return "float32"
	case "F16":
		return "float16"
	case "BF16":
		return "bfloat16"
	case "F8_E4M3":
		return "float8_e4m3"
	case "F8_E5M2":
		return "float8_e5m2"
	case "C64":
		return "complex64"
	case "I8":
		return "int8"
	case "I16":
		return "int16"
	case "I32":
		return "int32"
	case "I64":
		return "int64"
	case "U8":
		return "uint8"
	case "U16":
		return "uint16"
	case "U32":
		return "uint32"
	case "U64":
		return "uint64"
	case "BOOL":
		return "bool"
	}
	return strings.ToLower(dtype)
}

// precisionList writes the dtypes holding weights as model-spec asks of a
// model with several ("float16,float8_e4m3"): the one holding most bytes
// first, so a reader that takes the first name gets the dominant one.
func precisionList(bytesByDtype map[string]int64) string {
	type entry struct {
		name  string
		bytes int64
	}
	merged := map[string]int64{}
	for dtype, n := range bytesByDtype {
		merged[specPrecision(dtype)] += n
	}
	var entries []entry
	for name, n := range merged {
		entries = append(entries, entry{name, n})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := cmp.Compare(b.bytes, a.bytes); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.name
	}
	return strings.Join(names, ",")
}

// dockerQuantization is what Docker's packager writes as the quantization
// of safetensors weights: the dtype itself when every tensor has the same,
// else "mixed"; "unknown" without tensors.
func dockerQuantization(dtypes map[string]int64) string {
	switch len(dtypes) {
	case 0:
		return "unknown"
	case 1:
		for dtype := range dtypes {
			return dtype
		}
	}
	return "mixed"
}

// ggufFileTypes are the names gguf-parser-go (which Docker's packager
// uses) gives llama.cpp's general.file_type values (LLAMA_FTYPE_*), by value.
var ggufFileTypes = []string{
	"MOSTLY_F32", "MOSTLY_F16", "MOSTLY_Q4_0", "MOSTLY_Q4_1", "MOSTLY_Q4_1_SOME_F16",
	"MOSTLY_Q4_2", "MOSTLY_Q4_3", "MOSTLY_Q8_0", "MOSTLY_Q5_0", "MOSTLY_Q5_1",
	"MOSTLY_Q2_K", "MOSTLY_Q3_K_S", "MOSTLY_Q3_K_M", "MOSTLY_Q3_K_L", "MOSTLY_Q4_K_S",
	"MOSTLY_Q4_K_M", "MOSTLY_Q5_K_S", "MOSTLY_Q5_K_M", "MOSTLY_Q6_K", "MOSTLY_IQ2_XXS",
	"MOSTLY_IQ2_XS", "MOSTLY_Q2_K_S", "MOSTLY_IQ3_XS", "MOSTLY_IQ3_XXS", "MOSTLY_IQ1_S",
	"MOSTLY_IQ4_NL", "MOSTLY_IQ3_S", "MOSTLY_IQ3_M", "MOSTLY_IQ2_S", "MOSTLY_IQ2_M",
	"MOSTLY_IQ4_XS", "MOSTLY_IQ1_M", "MOSTLY_BF16", "MOSTLY_Q4_0_4_4", "MOSTLY_Q4_0_4_8",
	"MOSTLY_Q4_0_8_8", "MOSTLY_TQ1_0", "MOSTLY_TQ2_0", "MOSTLY_MXFP4",
}

// ggufFileType names a general.file_type as Docker's packager writes it.
func ggufFileType(v uint64, ok bool) string {
	switch {
	case !ok || v == uint64(len(ggufFileTypes)):
		// gguf-parser-go guesses from the tensor types here; a file written by
		// llama.cpp always has the key, so the guess is not repeated.
		return "Unknown"
	case v < uint64(len(ggufFileTypes)):
		return ggufFileTypes[v]
	}
	return "GGUFFileType(" + strconv.FormatUint(v, 10) + ")"
}

// ggufSpecQuantization splits a general.file_type into what model-spec has
// fields for: an unquantized file has a precision, a quantized one the
// name llama.cpp gives it (Q4_K_M, as in file names and tags).
func ggufSpecQuantization(v uint64, ok bool) (precision, quantization string) {
	if !ok || v >= uint64(len(ggufFileTypes)) {
		return "", ""
	}
	switch name := strings.TrimPrefix(ggufFileTypes[v], "MOSTLY_"); name {
	case "F32":
		return "float32", ""
	case "F16":
		return "float16", ""
	case "BF16":
		return "bfloat16", ""
	default:
		return "", name
	}
}
