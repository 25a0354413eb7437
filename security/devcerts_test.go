package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("%s: want exactly one PEM certificate", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWriteDevCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if err := WriteDevCerts(dir, []string{"node-1.lab", "10.1.2.3", "127.0.0.1", "LOCALHOST", "*.fedmo.test"}); err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	for name, want := range map[string]os.FileMode{
		CAFileName: 0o644, CAKeyFileName: 0o600, ServerFileName: 0o644, ServerKeyFileName: 0o600,
		ClientFileName: 0o644, ClientKeyFileName: 0o600, TokenFileName: 0o600,
	} {
		fi, err := os.Stat(p(name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: permissions %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v, %v; want permissions 0700", fi.Mode(), err)
	}

	ca := readCert(t, p(CAFileName))
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA %v, key usage %v", ca.IsCA, ca.KeyUsage)
	}
	if years := ca.NotAfter.Sub(ca.NotBefore).Hours() / 24 / 365; years < 9.99 || years > 10.01 {
		t.Errorf("CA valid for %.2f years, want 10", years)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, leaf := range []struct {
		file  string
		usage x509.ExtKeyUsage
	}{{ServerFileName, x509.ExtKeyUsageServerAuth}, {ClientFileName, x509.ExtKeyUsageClientAuth}} {
		c := readCert(t, p(leaf.file))
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", leaf.file, c.PublicKey)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{leaf.usage}}); err != nil {
			t.Errorf("%s: %v", leaf.file, err)
		}
		// Every fedmo process serves and dials gRPC with one certificate.
		if !slices.Equal(c.ExtKeyUsage, bothUsages) {
			t.Errorf("%s: ExtKeyUsage %v, want %v", leaf.file, c.ExtKeyUsage, bothUsages)
		}
	}
	srv := readCert(t, p(ServerFileName))
	for _, h := range []string{"127.0.0.1", "::1", "localhost", "node-1.lab", "10.1.2.3", "a.fedmo.test"} {
		if err := srv.VerifyHostname(h); err != nil {
			t.Errorf("server certificate: %v", err)
		}
	}
	if len(srv.IPAddresses) != 3 || !slices.Equal(srv.DNSNames, []string{"localhost", "node-1.lab", "*.fedmo.test"}) {
		t.Errorf("server SANs: IPs %v, DNS %v; want no duplicates", srv.IPAddresses, srv.DNSNames)
	}
	for _, pair := range [][2]string{{ServerFileName, ServerKeyFileName}, {ClientFileName, ClientKeyFileName}} {
		if _, err := tls.LoadX509KeyPair(p(pair[0]), p(pair[1])); err != nil {
			t.Errorf("%s with %s: %v", pair[0], pair[1], err)
		}
	}
	tok, err := readToken(p(TokenFileName))
	if err != nil || len(tok) < 40 {
		t.Errorf("token %q, %v: want at least 40 characters", tok, err)
	}

	// A second PKI gets another CA and token.
	dir2 := t.TempDir()
	if err := WriteDevCerts(dir2, nil); err != nil {
		t.Fatal(err)
	}
	if tok2, _ := readToken(filepath.Join(dir2, TokenFileName)); string(tok2) == string(tok) {
		t.Error("two dev PKIs share their token")
	}
	if readCert(t, filepath.Join(dir2, CAFileName)).Equal(ca) {
		t.Error("two dev PKIs share their CA")
	}
}

func TestWriteDevCertsRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDevCerts(dir, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, TokenFileName))
	err := WriteDevCerts(dir, nil)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, CAFileName)) || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second WriteDevCerts: %v, want a refusal naming %s", err, CAFileName)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, TokenFileName)); string(after) != string(before) {
		t.Error("the refused call changed the token")
	}

	// One existing file: refused, nothing written.
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, TokenFileName), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = WriteDevCerts(dir, nil)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, TokenFileName)) {
		t.Errorf("WriteDevCerts over a token: %v, want a refusal naming it", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the refused call left %d files, want only the token", len(ents))
	}

	for _, bad := range []string{"", "two words", "-x.lab", "a..b", "x_y.lab", strings.Repeat("a", 64) + ".lab"} {
		if err := WriteDevCerts(t.TempDir(), []string{bad}); err == nil || !strings.Contains(err.Error(), "neither an IP") {
			t.Errorf("host %q: %v, want an error", bad, err)
		}
	}
	if err := WriteDevCerts("", nil); err == nil {
		t.Error("empty directory accepted")
	}
}

// The development certificates are long-lived enough for a project.
func TestDevCertValidity(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDevCerts(dir, nil); err != nil {
		t.Fatal(err)
	}
	c := readCert(t, filepath.Join(dir, ServerFileName))
	if time.Until(c.NotAfter) < 800*24*time.Hour || time.Since(c.NotBefore) < 0 {
		t.Errorf("server certificate valid %v to %v", c.NotBefore, c.NotAfter)
	}
	if !slices.ContainsFunc(c.IPAddresses, net.IPv6loopback.Equal) {
		t.Errorf("server certificate IPs %v lack ::1", c.IPAddresses)
	}
}
