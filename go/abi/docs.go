package abi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
)

// modulePath is this module's import path, which SourceDocs strips to find
// a package's directory.
var modulePath = strings.TrimSuffix(reflect.TypeFor[Control]().PkgPath(), "/abi")

// Docs gives the doc comment of a struct type (field "") or of one of its
// fields, by the type's import path and name; "" when there is none.
type Docs func(pkg, typ, field string) string

// SourceDocs reads Docs from the sources of this module's packages under
// moduleDir (the go/ directory), for the schema's descriptions. A package
// is parsed when first asked about; one that cannot be read gives none.
func SourceDocs(moduleDir string) Docs {
	var mu sync.Mutex
	docs := map[string]string{}
	parsed := map[string]bool{}
	return func(pkg, typ, field string) string {
		mu.Lock()
		defer mu.Unlock()
		if !parsed[pkg] && strings.HasPrefix(pkg, modulePath) {
			parsed[pkg] = true
			readDocs(filepath.Join(moduleDir, strings.TrimPrefix(pkg, modulePath)), pkg, docs)
		}
		return docs[pkg+"."+typ+"."+field]
	}
}

func readDocs(dir, pkg string, docs map[string]string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
		if err != nil {
			continue
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				ts := s.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				docs[pkg+"."+ts.Name.Name+"."] = oneLine(doc)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					text := oneLine(fld.Doc)
					if text == "" {
						text = oneLine(fld.Comment)
					}
					for _, n := range fld.Names {
						docs[pkg+"."+ts.Name.Name+"."+n.Name] = text
					}
				}
			}
		}
	}
}

func oneLine(g *ast.CommentGroup) string {
	return strings.Join(strings.Fields(g.Text()), " ")
}
