package runio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// ErrTampered reports a manifest whose manifest_sha256 does not match its
// content: it was edited after fedmo wrote it (or written by something else).
var ErrTampered = errors.New("runio: the manifest does not match its manifest_sha256 (edited after the run?)")

// Seal returns the manifest's self-check: the SHA-256 (hex) of its canonical
// JSON with ManifestSHA256 empty. The canonical JSON is encoding/json's
// compact encoding of the Manifest struct: fields in declaration order, no
// indentation, floats in the shortest form that round-trips, so decoding a
// manifest and encoding it again gives the same bytes.
func Seal(m Manifest) string {
	m.ManifestSHA256 = ""
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // a Manifest always marshals: strings, numbers and slices of them
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// CheckManifest reads the manifest at path strictly (an unknown key is an
// error) and checks its manifest_sha256. It returns the manifest when the
// file is intact; an error wrapping ErrTampered when the check fails; and
// another error when the file cannot be read, is not a manifest or has no
// self-check (written before fedmo added it).
func CheckManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("runio: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("runio: %s: not a fedmo manifest: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("runio: %s: not a fedmo manifest: data after the JSON object", path)
	}
	if m.ManifestSHA256 == "" {
		return nil, fmt.Errorf("runio: %s: no manifest_sha256, so it cannot be checked (a run that did not finish, or a fedmo older than the self-check)", path)
	}
	if got := Seal(m); got != m.ManifestSHA256 {
		return nil, fmt.Errorf("%w: %s: manifest_sha256 %.12s..., the content hashes to %.12s...", ErrTampered, path, m.ManifestSHA256, got)
	}
	return &m, nil
}
