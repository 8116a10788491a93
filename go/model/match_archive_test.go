package model_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oci-client/liboci/model"
)

// Archives are kept whole by their own path, or for their entries when the
// patterns may name some: always for an unnamed archive, and for a named one
// when a pattern's fixed start lies inside it.
func TestFilterArchives(t *testing.T) {
	files := []model.File{
		{Path: "model.safetensors"},
		{Path: "vllm-config.tar", Archive: model.ArchiveTar, Unnamed: true},
		{Path: "tokenizer", Archive: model.ArchiveTar},
		{Path: "configs", Archive: model.ArchiveTar, Kind: model.KindWeightConfig},
	}
	// shown lists each kept file, "=" for whole, "~" for entries.
	shown := func(fs []model.File) string {
		var out []string
		for _, f := range fs {
			how := "="
			if f.Entries != nil {
				how = "~"
			}
			out = append(out, how+f.Path)
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		allow, ignore []string
		want          string
	}{
		{nil, nil, "=model.safetensors,=vllm-config.tar,=tokenizer,=configs"},
		{[]string{"*.json"}, nil, "~vllm-config.tar,~configs"},
		{[]string{"vllm-*.tar"}, nil, "=vllm-config.tar,~configs"},
		{[]string{"tokenizer*"}, nil, "~vllm-config.tar,=tokenizer,~configs"},
		{[]string{"tokenizer/*.json"}, nil, "~vllm-config.tar,~tokenizer,~configs"},
		{[]string{"tokenizer/"}, nil, "~vllm-config.tar,~tokenizer,~configs"},
		{[]string{"[t]okenizer/[*].json"}, nil, "~vllm-config.tar,~tokenizer,~configs"},
		{[]string{"tok*/a.json"}, nil, "~vllm-config.tar,~configs"},
		{[]string{"configs"}, nil, "~vllm-config.tar,=configs"},
		{nil, []string{"*.md"}, "=model.safetensors,~vllm-config.tar,=tokenizer,=configs"},
		{nil, []string{"vllm-config.tar"}, "=model.safetensors,=tokenizer,=configs"},
		{[]string{"*.json"}, []string{"*.tar", "configs"}, ""},
	}
	for _, c := range cases {
		got, err := model.Filter(files, c.allow, c.ignore)
		if err != nil || shown(got) != c.want {
			t.Errorf("Filter(%q, %q) = %s, %v; want %s", c.allow, c.ignore, shown(got), err, c.want)
		}
	}
}

func TestEntryFilterKeep(t *testing.T) {
	got, err := model.Filter([]model.File{{Path: "code.tar", Archive: model.ArchiveTar, Unnamed: true}},
		[]string{"*.json", "tokenizer/"}, []string{"secret*"})
	if err != nil || len(got) != 1 {
		t.Fatalf("Filter: %v, %v", got, err)
	}
	e := got[0].Entries
	for p, want := range map[string]bool{
		"config.json": true, "sub/a.json": true, "tokenizer/vocab.txt": true,
		"secret.json": false, "model.safetensors": false, "tokenizer": false,
	} {
		if e.Keep(p) != want {
			t.Errorf("Keep(%q) = %v, want %v", p, !want, want)
		}
	}
	var all *model.EntryFilter
	if !all.Keep("anything") {
		t.Error("a nil EntryFilter keeps everything")
	}
}

// Unnamed is set where the name is generated or is the model root, and only
// on archives.
func TestUnnamedArchives(t *testing.T) {
	layer := func(mt, name string) string {
		ann := ""
		if name != "" {
			ann = fmt.Sprintf(`,"annotations":{"org.cncf.model.filepath":%q}`, name)
		}
		return fmt.Sprintf(`{"mediaType":%q,"digest":"sha256:%064x","size":1%s}`, mt, len(mt)+len(name), ann)
	}
	raw := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"config":{"mediaType":"application/vnd.cncf.model.config.v1+json","digest":"sha256:%064x","size":2},
		"layers":[%s,%s,%s,%s]}`, 99,
		layer("application/vnd.cncf.model.weight.v1.raw", "model.safetensors"),
		layer("application/vnd.cncf.model.code.v1.tar", ""),
		layer("application/vnd.cncf.model.weight.config.v1.tar", "."),
		layer("application/vnd.cncf.model.doc.v1.tar", "docs"))
	m, err := model.Parse([]byte(raw), "application/vnd.oci.image.manifest.v1+json")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range m.Files {
		got = append(got, fmt.Sprintf("%s:%v", f.Path, f.Unnamed))
	}
	want := "model.safetensors:false,code.tar:true,weight-config.tar:true,docs:false"
	if strings.Join(got, ",") != want {
		t.Errorf("files %s, want %s", strings.Join(got, ","), want)
	}
}
