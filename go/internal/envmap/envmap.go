// Package envmap holds a process environment passed in by the caller.
//
// The Go runtime copies the environment once, when the shared library loads;
// a Python program that changes os.environ afterwards would otherwise talk to
// a stale copy. Every call therefore carries the caller's environment, and no
// code in this module reads os.Getenv for settings the user controls.
package envmap

import "strings"

// Env maps variable names to values. A missing key means the variable is unset.
type Env map[string]string

// Get returns the value of key, or "" when it is unset.
func (e Env) Get(key string) string { return e[key] }

// Lookup reports the value of key and whether it is set.
func (e Env) Lookup(key string) (string, bool) {
	v, ok := e[key]
	return v, ok
}

// First returns the first non-empty value among keys, in order; proxy
// variables come in upper and lower case and the first spelling wins.
func (e Env) First(keys ...string) string {
	for _, k := range keys {
		if v := e[k]; v != "" {
			return v
		}
	}
	return ""
}

// List renders the environment as KEY=VALUE pairs for exec.Cmd.Env.
func (e Env) List() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		if k == "" || strings.ContainsRune(k, '=') {
			continue
		}
		out = append(out, k+"="+v)
	}
	return out
}

// FromList reads KEY=VALUE pairs (os.Environ's form); a later pair for a
// key wins, as in a shell.
func FromList(pairs []string) Env {
	e := make(Env, len(pairs))
	for _, kv := range pairs {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			e[k] = v
		}
	}
	return e
}
