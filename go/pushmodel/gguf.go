package pushmodel

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Bounds on a GGUF header. A file that claims more is refused rather than
// believed: the counts come from the file, and a corrupt or hostile one
// would otherwise have us allocate or read without end. Real headers are
// far below them (a 256k-token vocabulary is a few MB of strings).
const (
	ggufMaxKV         = 1 << 16
	ggufMaxTensors    = 1 << 20
	ggufMaxString     = 16 << 20
	ggufMaxArray      = 1 << 24
	ggufMaxDims       = 8
	ggufMaxHeaderRead = 512 << 20
	// Docker's packager leaves arrays longer than this (vocabularies,
	// merges) out of the metadata it copies into the config.
	ggufMaxListedArray = 50
)

const (
	ggufUint8 uint32 = iota
	ggufInt8
	ggufUint16
	ggufInt16
	ggufUint32
	ggufInt32
	ggufFloat32
	ggufBool
	ggufString
	ggufArray
	ggufUint64
	ggufInt64
	ggufFloat64
)

// ggufHeader is what the header of a GGUF file says, as far as the
// configs need it.
type ggufHeader struct {
	version uint32
	// kv holds every key/value pair as Docker's packager writes it into
	// config.gguf (numbers in decimal, floats as %f, short arrays joined by
	// ", "); arrays longer than ggufMaxListedArray are absent.
	kv       map[string]string
	numbers  map[string]uint64 // the unsigned integer values, for general.file_type and <arch>.context_length
	elements int64             // parameters: the tensors' elements, summed
	dataSize int64             // bytes of tensor data: the file after the aligned header
}

var errNotGGUF = errors.New("not a GGUF file")

// readGGUFHeader reads the key/value metadata and the tensor infos of a
// GGUF v2 or v3 file (little-endian), stopping where the tensor data starts.
func readGGUFHeader(p string) (*ggufHeader, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r := &ggufReader{r: bufio.NewReaderSize(io.LimitReader(f, ggufMaxHeaderRead), 1<<16)}
	h, err := r.header(fi.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return h, nil
}

type ggufReader struct {
	r   *bufio.Reader
	pos int64
	buf [8]byte
}

func (g *ggufReader) read(n int) ([]byte, error) {
	if _, err := io.ReadFull(g.r, g.buf[:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	g.pos += int64(n)
	return g.buf[:n], nil
}

func (g *ggufReader) u32() (uint32, error) {
	b, err := g.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (g *ggufReader) u64() (uint64, error) {
	b, err := g.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// str reads a string; keep=false skips it without holding it in memory.
func (g *ggufReader) str(keep bool) (string, error) {
	n, err := g.u64()
	if err != nil {
		return "", err
	}
	if n > ggufMaxString {
		return "", fmt.Errorf("GGUF string of %d bytes", n)
	}
	if !keep {
		m, err := io.CopyN(io.Discard, g.r, int64(n))
		g.pos += m
		if err != nil {
			return "", io.ErrUnexpectedEOF
		}
		return "", nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(g.r, b); err != nil {
		return "", io.ErrUnexpectedEOF
	}
	g.pos += int64(n)
	return string(b), nil
}

func (g *ggufReader) header(fileSize int64) (*ggufHeader, error) {
	b, err := g.read(4)
	if err != nil || string(b) != "GGUF" {
		return nil, errNotGGUF
	}
	h := &ggufHeader{kv: map[string]string{}, numbers: map[string]uint64{}}
	if h.version, err = g.u32(); err != nil {
		return nil, err
	}
	// v1 used 32-bit counts and lengths; llama.cpp has not written it since 2023.
	if h.version != 2 && h.version != 3 {
		return nil, fmt.Errorf("GGUF version %d (2 and 3 are read)", h.version)
	}
	tensors, err := g.u64()
	if err != nil {
		return nil, err
	}
	kvs, err := g.u64()
	if err != nil {
		return nil, err
	}
	if tensors > ggufMaxTensors || kvs > ggufMaxKV {
		return nil, fmt.Errorf("GGUF header claims %d tensors and %d keys", tensors, kvs)
	}
	for range kvs {
		key, err := g.str(true)
		if err != nil {
			return nil, err
		}
		typ, err := g.u32()
		if err != nil {
			return nil, err
		}
		s, n, listed, err := g.value(typ)
		if err != nil {
			return nil, fmt.Errorf("GGUF key %q: %w", key, err)
		}
		if listed {
			h.kv[key] = s
		}
		if n != nil {
			h.numbers[key] = *n
		}
	}
	for range tensors {
		if _, err := g.str(false); err != nil {
			return nil, err
		}
		dims, err := g.u32()
		if err != nil {
			return nil, err
		}
		if dims > ggufMaxDims {
			return nil, fmt.Errorf("GGUF tensor of %d dimensions", dims)
		}
		elems := int64(1)
		for range dims {
			d, err := g.u64()
			if err != nil {
				return nil, err
			}
			if d != 0 && uint64(elems) > math.MaxInt64/d {
				return nil, errors.New("GGUF tensor too large")
			}
			elems *= int64(d)
		}
		if _, err := g.u32(); err != nil { // the tensor's type
			return nil, err
		}
		if _, err := g.u64(); err != nil { // its offset in the data
			return nil, err
		}
		if h.elements > math.MaxInt64-elems {
			return nil, errors.New("GGUF tensors too large")
		}
		h.elements += elems
	}
	align := int64(32)
	if a, ok := h.numbers["general.alignment"]; ok && a > 0 && a <= 1<<20 {
		align = int64(a)
	}
	start := (g.pos + align - 1) / align * align
	if fileSize > start {
		h.dataSize = fileSize - start
	}
	return h, nil
}

func ggufScalarSize(typ uint32) int {
	switch typ {
	case ggufUint8, ggufInt8, ggufBool:
		return 1
	case ggufUint16, ggufInt16:
		return 2
	case ggufUint32, ggufInt32, ggufFloat32:
		return 4
	case ggufUint64, ggufInt64, ggufFloat64:
		return 8
	}
	return 0
}

// value reads one value of type typ and gives it as Docker's packager
// writes it (listed=false when it is left out: a long array), and the
// number of a non-negative integer.
func (g *ggufReader) value(typ uint32) (s string, n *uint64, listed bool, err error) {
	if typ == ggufString {
		s, err := g.str(true)
		return s, nil, true, err
	}
	if typ == ggufArray {
		return g.array(0)
	}
	size := ggufScalarSize(typ)
	if size == 0 {
		return "", nil, false, fmt.Errorf("GGUF value type %d", typ)
	}
	b, err := g.read(size)
	if err != nil {
		return "", nil, false, err
	}
	var v uint64
	var signed int64
	switch typ {
	case ggufFloat32:
		return fmt.Sprintf("%f", math.Float32frombits(binary.LittleEndian.Uint32(b))), nil, true, nil
	case ggufFloat64:
		return fmt.Sprintf("%f", math.Float64frombits(binary.LittleEndian.Uint64(b))), nil, true, nil
	case ggufBool:
		return fmt.Sprint(b[0] != 0), nil, true, nil
	case ggufUint8:
		v = uint64(b[0])
	case ggufUint16:
		v = uint64(binary.LittleEndian.Uint16(b))
	case ggufUint32:
		v = uint64(binary.LittleEndian.Uint32(b))
	case ggufUint64:
		v = binary.LittleEndian.Uint64(b)
	case ggufInt8:
		signed = int64(int8(b[0]))
	case ggufInt16:
		signed = int64(int16(binary.LittleEndian.Uint16(b)))
	case ggufInt32:
		signed = int64(int32(binary.LittleEndian.Uint32(b)))
	case ggufInt64:
		signed = int64(binary.LittleEndian.Uint64(b))
	}
	switch typ {
	case ggufInt8, ggufInt16, ggufInt32, ggufInt64:
		if signed < 0 {
			return fmt.Sprint(signed), nil, true, nil
		}
		v = uint64(signed)
	}
	return fmt.Sprint(v), &v, true, nil
}

// ggufMaxNesting bounds arrays of arrays, which llama.cpp never writes, so
// that a crafted file cannot recurse without end.
const ggufMaxNesting = 4

// array reads an array value (its element type, count, then the values).
// Docker's packager lists the values of one with at most
// ggufMaxListedArray of them, joined by ", ", and a nested array as
// nothing; longer ones are read past without being held.
func (g *ggufReader) array(depth int) (string, *uint64, bool, error) {
	if depth > ggufMaxNesting {
		return "", nil, false, errors.New("GGUF arrays nested too deep")
	}
	elemType, err := g.u32()
	if err != nil {
		return "", nil, false, err
	}
	count, err := g.u64()
	if err != nil {
		return "", nil, false, err
	}
	if count > ggufMaxArray {
		return "", nil, false, fmt.Errorf("GGUF array of %d values", count)
	}
	keep := depth == 0 && count <= ggufMaxListedArray
	if size := int64(ggufScalarSize(elemType)); !keep && size > 0 {
		m, err := io.CopyN(io.Discard, g.r, int64(count)*size)
		g.pos += m
		if err != nil {
			return "", nil, false, io.ErrUnexpectedEOF
		}
		return "", nil, false, nil
	}
	var parts []string
	for range count {
		var p string
		switch elemType {
		case ggufArray:
			_, _, _, err = g.array(depth + 1)
		case ggufString:
			p, err = g.str(keep)
		default:
			p, _, _, err = g.value(elemType)
		}
		if err != nil {
			return "", nil, false, err
		}
		if keep && elemType != ggufArray {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", "), nil, keep, nil
}
