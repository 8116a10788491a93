package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// secretFile holds the HTTP secret that signs upload session state. Keeping
// it across restarts lets an upload URL handed out before a restart be
// resumed after it.
const secretFile = ".http-secret"

// loadOrCreateSecret returns the secret stored under root, creating it on first
// use. Two registries starting on one root at once agree on one secret: the
// new one is written to a temporary file and linked into place, which fails
// for the loser, who then reads the winner's.
func loadOrCreateSecret(root string) (string, error) {
	path := filepath.Join(root, secretFile)
	if s, err := readSecret(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}

	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generating the HTTP secret: %w", err)
	}
	secret := hex.EncodeToString(raw[:])

	tmp, err := os.CreateTemp(root, secretFile+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("writing the HTTP secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp already makes the file 0600.
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing the HTTP secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing the HTTP secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("writing the HTTP secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readSecret(path)
		}
		return "", fmt.Errorf("writing the HTTP secret: %w", err)
	}
	return secret, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("reading the HTTP secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("the HTTP secret %s is empty: remove it to have a new one made", path)
	}
	return s, nil
}
