package model

import (
	"fmt"
	"strings"
)

// Match reports whether name matches a glob pattern with the semantics of
// huggingface_hub's allow_patterns and ignore_patterns (utils/_paths.py:
// filter_repo_objects), which are Python's fnmatchcase: '*' matches any run
// of characters including '/', '?' one character, '[seq]' one character in
// seq and '[!seq]' one not in it; there is no escape character. As there,
// backslashes count as '/' and a pattern ending in "/" matches everything
// under that directory. Unlike Python, which takes an unclosed '[' as a
// literal, such a pattern is ErrBadPattern: it is a typo that would match
// nothing.
func Match(pattern, name string) (bool, error) {
	g, err := compileGlob(pattern)
	if err != nil {
		return false, err
	}
	return g.match(name), nil
}

// Filter keeps the files whose Path matches some allow pattern (all when
// allow is empty) and no ignore pattern, in order; a file kept that way is
// kept whole. Archives go further, since patterns name files, wherever they
// were packed:
//   - an archive with no name of its own (Unnamed: its Path is generated, or
//     it unpacks at the model root) is kept whole only when an allow pattern
//     names its Path; otherwise, when there are patterns, it is kept with
//     Entries set, so that the entries the patterns select are placed;
//   - an archive with a name of its own that its Path does not select is
//     kept with Entries when an allow pattern reaches inside it (its fixed
//     start is the archive's Path and a '/', as in "tokenizer/*.json"), or
//     when it holds weight configs (small, and what patterns are mostly
//     after: a ModelPack config directory packed whole).
//
// An ignore pattern that matches an archive's Path drops it whole.
func Filter(files []File, allow, ignore []string) ([]File, error) {
	allowed, err := compileGlobs(allow, "allow")
	if err != nil {
		return nil, err
	}
	ignored, err := compileGlobs(ignore, "ignore")
	if err != nil {
		return nil, err
	}
	entries := &EntryFilter{allow: allowed, ignore: ignored}
	out := make([]File, 0, len(files))
	for _, f := range files {
		if anyMatch(ignored, f.Path) {
			continue
		}
		named := len(allowed) > 0 && anyMatch(allowed, f.Path)
		switch {
		case named || (len(allowed) == 0 && !(f.Unnamed && len(ignored) > 0)):
			out = append(out, f)
		case f.Archive == "":
		case f.Unnamed || f.Kind == KindWeightConfig || reachesInside(allowed, f.Path):
			// Its entries are known only once it is fetched.
			f.Entries = entries
			out = append(out, f)
		}
	}
	return out, nil
}

// EntryFilter picks the entries of an archive layer that the patterns
// select; nil picks them all.
type EntryFilter struct{ allow, ignore []*glob }

// Keep reports whether the entry at p (relative to the model root) is one
// the patterns select.
func (e *EntryFilter) Keep(p string) bool {
	if e == nil {
		return true
	}
	return (len(e.allow) == 0 || anyMatch(e.allow, p)) && !anyMatch(e.ignore, p)
}

// reachesInside reports whether some pattern's fixed start (the characters
// before its first wildcard) lies inside directory dir: such a pattern
// names files in an archive that unpacks there.
func reachesInside(gs []*glob, dir string) bool {
	for _, g := range gs {
		if strings.HasPrefix(g.literalPrefix(), dir+"/") {
			return true
		}
	}
	return false
}

func compileGlobs(patterns []string, what string) ([]*glob, error) {
	gs := make([]*glob, len(patterns))
	for i, p := range patterns {
		g, err := compileGlob(p)
		if err != nil {
			return nil, fmt.Errorf("%s pattern: %w", what, err)
		}
		gs[i] = g
	}
	return gs, nil
}

func anyMatch(gs []*glob, name string) bool {
	for _, g := range gs {
		if g.match(name) {
			return true
		}
	}
	return false
}

// glob is a compiled pattern: tokens that each match one character, and
// stars.
type glob struct{ toks []globToken }

type globToken struct {
	op  byte // '*', '?', '[' or 'c' (the literal r)
	r   rune
	neg bool
	set []runeRange
}

type runeRange struct{ lo, hi rune }

func (t *globToken) matches(c rune) bool {
	switch t.op {
	case '?':
		return true
	case 'c':
		return c == t.r
	}
	in := false
	for _, rg := range t.set {
		if rg.lo <= c && c <= rg.hi {
			in = true
			break
		}
	}
	return in != t.neg
}

// literalPrefix is what every name the glob matches begins with: its
// characters up to the first wildcard (a one-character set such as "[*]"
// counts as that character).
func (g *glob) literalPrefix() string {
	var b strings.Builder
	for _, t := range g.toks {
		switch {
		case t.op == 'c':
			b.WriteRune(t.r)
		case t.op == '[' && !t.neg && len(t.set) == 1 && t.set[0].lo == t.set[0].hi:
			b.WriteRune(t.set[0].lo)
		default:
			return b.String()
		}
	}
	return b.String()
}

// match is the usual one-backtrack-point glob match; every token but '*'
// takes exactly one character, so it is exact and O(len(pattern)*len(name)).
func (g *glob) match(name string) bool {
	s := []rune(strings.ReplaceAll(name, `\`, "/"))
	p, q := 0, 0
	star, from := -1, 0
	for q < len(s) {
		switch {
		case p < len(g.toks) && g.toks[p].op == '*':
			star, from = p, q
			p++
		case p < len(g.toks) && g.toks[p].matches(s[q]):
			p++
			q++
		case star >= 0:
			from++
			p, q = star+1, from
		default:
			return false
		}
	}
	for p < len(g.toks) && g.toks[p].op == '*' {
		p++
	}
	return p == len(g.toks)
}

func compileGlob(pattern string) (*glob, error) {
	pattern = strings.ReplaceAll(pattern, `\`, "/")
	if strings.HasSuffix(pattern, "/") {
		pattern += "*"
	}
	pat := []rune(pattern)
	g := &glob{}
	for i := 0; i < len(pat); {
		c := pat[i]
		i++
		switch c {
		case '*':
			if n := len(g.toks); n == 0 || g.toks[n-1].op != '*' {
				g.toks = append(g.toks, globToken{op: '*'})
			}
		case '?':
			g.toks = append(g.toks, globToken{op: '?'})
		case '[':
			// Where the set ends, as fnmatch finds it: a ']' right after
			// '[' or '[!' is a member.
			j := i
			if j < len(pat) && pat[j] == '!' {
				j++
			}
			if j < len(pat) && pat[j] == ']' {
				j++
			}
			for j < len(pat) && pat[j] != ']' {
				j++
			}
			if j >= len(pat) {
				return nil, fmt.Errorf("%w: %q: '[' at %d is not closed", ErrBadPattern, pattern, i-1)
			}
			t, err := compileSet(pat, i, j)
			if err != nil {
				return nil, fmt.Errorf("%w: %q: %s", ErrBadPattern, pattern, err)
			}
			g.toks = append(g.toks, t)
			i = j + 1
		default:
			g.toks = append(g.toks, globToken{op: 'c', r: c})
		}
	}
	return g, nil
}

// setItem is a character of a set body, or (sep) a '-' between two
// characters that makes a range.
type setItem struct {
	r   rune
	sep bool
}

// compileSet compiles pat[i:j], the inside of a '[...]', exactly as
// fnmatch.translate does: split at the hyphens that make ranges, drop
// reversed ranges with their bounds, then read the result as a regular
// expression set.
func compileSet(pat []rune, i, j int) (globToken, error) {
	stuff := pat[i:j]
	var items []setItem
	if !containsRune(stuff, '-') {
		for _, r := range stuff {
			items = append(items, setItem{r: r})
		}
	} else {
		var chunks [][]rune
		k := i + 1
		if pat[i] == '!' {
			k = i + 2
		}
		for {
			k = indexRune(pat, '-', k, j)
			if k < 0 {
				break
			}
			chunks = append(chunks, append([]rune(nil), pat[i:k]...))
			i = k + 1
			k += 3
		}
		if chunk := pat[i:j]; len(chunk) > 0 {
			chunks = append(chunks, append([]rune(nil), chunk...))
		} else {
			last := len(chunks) - 1
			chunks[last] = append(chunks[last], '-')
		}
		for k := len(chunks) - 1; k > 0; k-- {
			a, b := chunks[k-1], chunks[k]
			if len(a) > 0 && len(b) > 0 && a[len(a)-1] > b[0] {
				chunks[k-1] = append(a[:len(a)-1], b[1:]...)
				chunks = append(chunks[:k], chunks[k+1:]...)
			}
		}
		for n, chunk := range chunks {
			if n > 0 {
				items = append(items, setItem{r: '-', sep: true})
			}
			for _, r := range chunk {
				items = append(items, setItem{r: r})
			}
		}
	}
	switch {
	case len(items) == 0:
		return globToken{op: '['}, nil // an empty set: matches nothing
	case len(items) == 1 && items[0] == setItem{r: '!'}:
		return globToken{op: '?'}, nil // a negated empty set: matches anything
	}
	t := globToken{op: '['}
	if items[0] == (setItem{r: '!'}) {
		t.neg, items = true, items[1:]
	}
	for n := 0; n < len(items); n++ {
		lo := items[n].r
		if n+2 < len(items) && items[n+1].sep {
			hi := items[n+2].r
			if hi < lo {
				return globToken{}, fmt.Errorf("bad character range %c-%c", lo, hi)
			}
			t.set = append(t.set, runeRange{lo, hi})
			n += 2
			continue
		}
		t.set = append(t.set, runeRange{lo, lo})
	}
	return t, nil
}

func containsRune(rs []rune, r rune) bool { return indexRune(rs, r, 0, len(rs)) >= 0 }

// indexRune is Python's str.find(r, from, to) on runes.
func indexRune(rs []rune, r rune, from, to int) int {
	for k := max(from, 0); k < to && k < len(rs); k++ {
		if rs[k] == r {
			return k
		}
	}
	return -1
}
