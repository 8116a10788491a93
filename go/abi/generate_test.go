package abi

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// The committed generated files must be what this package generates now.
func TestGeneratedFilesAreUpToDate(t *testing.T) {
	t.Parallel()
	py, err := os.ReadFile(filepath.Join("..", "..", PythonFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(py, Python()) {
		t.Errorf("%s is stale: run `cd go && go run ./cmd/abigen`", PythonFile)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", DocFile))
	if err != nil {
		t.Fatal(err)
	}
	want, err := Doc(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, want) {
		t.Errorf("%s is stale: run `cd go && go run ./cmd/abigen`", DocFile)
	}
}

// The cgo file's //export lines are the list here, in its order.
func TestCgoShimsExportTheList(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("..", "cmd", "liboci", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range regexp.MustCompile(`(?m)^//export (\w+)$`).FindAllSubmatch(src, -1) {
		got = append(got, string(m[1]))
	}
	var want []string
	for _, e := range Exports {
		want = append(want, e.Name)
	}
	want = append(want, PlainSymbols...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("cmd/liboci exports %v, package abi lists %v", got, want)
	}
}
