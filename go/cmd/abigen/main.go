// Command abigen writes the files generated from package abi: Python's
// src/oci_client/_abi.py, the table of exports in docs/reference/c-abi.md and the
// JSON Schema docs/reference/abi.schema.json. Run it
// from go/ after changing package abi; `go test ./abi` fails until then.
package main

import (
	"log"
	"os"
	"path/filepath"

	"github.com/oci-client/liboci/abi"
)

func main() {
	root := ".."
	if err := os.WriteFile(filepath.Join(root, abi.PythonFile), abi.Python(), 0o644); err != nil {
		log.Fatal(err)
	}
	docPath := filepath.Join(root, abi.DocFile)
	doc, err := os.ReadFile(docPath)
	if err != nil {
		log.Fatal(err)
	}
	if doc, err = abi.Doc(doc); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(docPath, doc, 0o644); err != nil {
		log.Fatal(err)
	}
	schema, err := abi.Schema(abi.SourceDocs("."))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, abi.SchemaFile), schema, 0o644); err != nil {
		log.Fatal(err)
	}
}
