package pushmodel

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ggufFile builds a little-endian GGUF file in a test.
type ggufFile struct {
	version uint32
	kvs     bytes.Buffer
	nkv     uint64
	tensors bytes.Buffer
	ntensor uint64
}

func putString(b *bytes.Buffer, s string) {
	_ = binary.Write(b, binary.LittleEndian, uint64(len(s)))
	b.WriteString(s)
}

func putValue(b *bytes.Buffer, typ uint32, v any) {
	switch typ {
	case ggufString:
		putString(b, v.(string))
	case ggufBool:
		if v.(bool) {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
	default:
		_ = binary.Write(b, binary.LittleEndian, v)
	}
}

func (g *ggufFile) kv(key string, typ uint32, v any) {
	putString(&g.kvs, key)
	_ = binary.Write(&g.kvs, binary.LittleEndian, typ)
	putValue(&g.kvs, typ, v)
	g.nkv++
}

func (g *ggufFile) array(key string, elem uint32, values ...any) {
	putString(&g.kvs, key)
	_ = binary.Write(&g.kvs, binary.LittleEndian, ggufArray)
	_ = binary.Write(&g.kvs, binary.LittleEndian, elem)
	_ = binary.Write(&g.kvs, binary.LittleEndian, uint64(len(values)))
	for _, v := range values {
		putValue(&g.kvs, elem, v)
	}
	g.nkv++
}

func (g *ggufFile) tensor(name string, dims ...uint64) {
	putString(&g.tensors, name)
	_ = binary.Write(&g.tensors, binary.LittleEndian, uint32(len(dims)))
	_ = binary.Write(&g.tensors, binary.LittleEndian, dims)
	_ = binary.Write(&g.tensors, binary.LittleEndian, uint32(12)) // Q4_K
	_ = binary.Write(&g.tensors, binary.LittleEndian, uint64(0))
	g.ntensor++
}

// bytes is the file, with data bytes of tensor data after the header
// padded to 32.
func (g *ggufFile) bytes(t *testing.T, data int) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("GGUF")
	_ = binary.Write(&b, binary.LittleEndian, g.version)
	_ = binary.Write(&b, binary.LittleEndian, g.ntensor)
	_ = binary.Write(&b, binary.LittleEndian, g.nkv)
	b.Write(g.kvs.Bytes())
	b.Write(g.tensors.Bytes())
	for b.Len()%32 != 0 {
		b.WriteByte(0)
	}
	b.Write(make([]byte, data))
	return b.Bytes()
}

func writeGGUF(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGGUFHeaderValues(t *testing.T) {
	g := ggufFile{version: 2}
	g.kv("u8", ggufUint8, uint8(18))
	g.kv("i8", ggufInt8, int8(-19))
	g.kv("u16", ggufUint16, uint16(4660))
	g.kv("i16", ggufInt16, int16(-4661))
	g.kv("u32", ggufUint32, uint32(305419896))
	g.kv("i32", ggufInt32, int32(-305419897))
	g.kv("u64", ggufUint64, uint64(1311768467463790320))
	g.kv("i64", ggufInt64, int64(-1311768467463790321))
	g.kv("f32", ggufFloat32, float32(0.12345678))
	g.kv("f64", ggufFloat64, 0.12345678)
	g.kv("bool", ggufBool, true)
	g.kv("str", ggufString, "hello world")
	g.array("arr.i16", ggufInt16, int16(1), int16(2), int16(3), int16(4))
	g.array("arr.str", ggufString, "a", "b")
	long := make([]any, 51)
	for i := range long {
		long[i] = "tok"
	}
	g.array("tokenizer.ggml.tokens", ggufString, long...)
	long32 := make([]any, 1000)
	for i := range long32 {
		long32[i] = int32(i)
	}
	g.array("tokenizer.ggml.token_type", ggufInt32, long32...)
	g.kv("general.alignment", ggufUint32, uint32(32))
	g.tensor("a", 3, 61) // 183 parameters, as in Docker's dummy.gguf
	h, err := readGGUFHeader(writeGGUF(t, g.bytes(t, 864)))
	if err != nil {
		t.Fatal(err)
	}
	// The strings Docker's packager writes for these values (its gguf_model_test.go).
	want := map[string]string{
		"u8": "18", "i8": "-19", "u16": "4660", "i16": "-4661", "u32": "305419896", "i32": "-305419897",
		"u64": "1311768467463790320", "i64": "-1311768467463790321", "f32": "0.123457", "f64": "0.123457",
		"bool": "true", "str": "hello world", "arr.i16": "1, 2, 3, 4", "arr.str": "a, b", "general.alignment": "32",
	}
	for k, v := range want {
		if h.kv[k] != v {
			t.Errorf("%s = %q, want %q", k, h.kv[k], v)
		}
	}
	if len(h.kv) != len(want) {
		t.Errorf("%d keys listed, want %d (arrays over 50 left out): %v", len(h.kv), len(want), h.kv)
	}
	if h.elements != 183 || h.dataSize != 864 || h.numbers["u32"] != 305419896 {
		t.Errorf("elements %d, data %d, u32 %d", h.elements, h.dataSize, h.numbers["u32"])
	}
	if ggufScalar(h.elements, ggufCountUnits, "") != "183" || ggufScalar(h.dataSize, ggufByteUnits, "B") != "864B" {
		t.Errorf("Docker's packager writes parameters 183 and size 864B for these")
	}
}

func TestGGUFHeaderRefusesAbsurdHeaders(t *testing.T) {
	tooManyKeys := []byte("GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff")
	longString := ggufFile{version: 3}
	putString(&longString.kvs, "k")
	_ = binary.Write(&longString.kvs, binary.LittleEndian, ggufString)
	_ = binary.Write(&longString.kvs, binary.LittleEndian, uint64(1)<<40)
	longString.nkv = 1
	hugeArray := ggufFile{version: 3}
	putString(&hugeArray.kvs, "k")
	_ = binary.Write(&hugeArray.kvs, binary.LittleEndian, ggufArray)
	_ = binary.Write(&hugeArray.kvs, binary.LittleEndian, ggufUint8)
	_ = binary.Write(&hugeArray.kvs, binary.LittleEndian, uint64(1)<<62)
	hugeArray.nkv = 1
	deep := ggufFile{version: 3}
	putString(&deep.kvs, "k")
	_ = binary.Write(&deep.kvs, binary.LittleEndian, ggufArray)
	for range 10 {
		_ = binary.Write(&deep.kvs, binary.LittleEndian, ggufArray)
		_ = binary.Write(&deep.kvs, binary.LittleEndian, uint64(1))
	}
	deep.nkv = 1
	truncated := ggufFile{version: 3}
	truncated.kv("general.architecture", ggufString, "llama")
	whole := truncated.bytes(t, 0)
	for name, b := range map[string][]byte{
		"not GGUF":      []byte("GGML\x03\x00\x00\x00"),
		"version 1":     []byte("GGUF\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		"too many keys": tooManyKeys,
		"long string":   longString.bytes(t, 0),
		"huge array":    hugeArray.bytes(t, 0),
		"nested arrays": deep.bytes(t, 0),
		"truncated":     whole[:len(whole)-len(whole)/3],
		"empty":         nil,
		"unknown type":  append([]byte("GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00k"), 99, 0, 0, 0),
		"too many dims": tensorWithDims(t, 9),
		"dims overflow": tensorWithDims(t, 2, 1<<40, 1<<40),
	} {
		if _, err := readGGUFHeader(writeGGUF(t, b)); err == nil {
			t.Errorf("%s: read without error", name)
		} else if strings.Contains(err.Error(), "panic") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func tensorWithDims(t *testing.T, n int, dims ...uint64) []byte {
	g := ggufFile{version: 3}
	putString(&g.tensors, "t")
	_ = binary.Write(&g.tensors, binary.LittleEndian, uint32(n))
	for i := range n {
		d := uint64(1)
		if i < len(dims) {
			d = dims[i]
		}
		_ = binary.Write(&g.tensors, binary.LittleEndian, d)
	}
	_ = binary.Write(&g.tensors, binary.LittleEndian, uint32(0))
	_ = binary.Write(&g.tensors, binary.LittleEndian, uint64(0))
	g.ntensor = 1
	return g.bytes(t, 0)
}
