package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The files WriteDevCerts writes into its directory.
const (
	CAFileName        = "ca.pem"
	CAKeyFileName     = "ca-key.pem"
	ServerFileName    = "server.pem"
	ServerKeyFileName = "server-key.pem"
	ClientFileName    = "client.pem"
	ClientKeyFileName = "client-key.pem"
	TokenFileName     = "token"
)

// Validity of the development certificates.
const (
	devCAValidity   = 10 * 365 * 24 * time.Hour
	devLeafValidity = 825 * 24 * time.Hour // the longest many TLS clients accept for a leaf
	devBackdate     = time.Hour            // tolerate clocks a little behind
)

// bothUsages: every fedmo process is a gRPC server and a gRPC client (the
// coordinator serves GetConfig and calls Train; a client process serves
// Train and calls GetConfig), and presents one certificate in both roles.
// By convention the coordinator takes server.pem and client processes
// client.pem.
var bothUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}

// WriteDevCerts writes a development PKI into dir (created with
// permissions 0700 if needed):
// a CA (ca.pem, ca-key.pem) valid for 10 years, a server certificate
// (server.pem, server-key.pem) and a client certificate (client.pem,
// client-key.pem) signed by it and valid for 825 days, and a random
// 256-bit token (token). Keys are ECDSA P-256 in PKCS #8. Both leaf
// certificates name 127.0.0.1, ::1 and localhost plus hosts (IP
// addresses or DNS names) and allow both server and client
// authentication, because every fedmo process serves and dials gRPC with
// one certificate (see bothUsages). Keys and the token are written with
// permissions 0600, certificates 0644.
//
// WriteDevCerts refuses to overwrite: if any of the seven files exists
// it writes nothing and names the file. If a write fails, it removes the
// files it wrote. The CA key is written so that more certificates can be
// signed by hand; for anything but development, use a real CA.
//
// The files plug into Options: a server uses CertFile server.pem,
// KeyFile server-key.pem and, for mutual TLS, CAFile ca.pem; a client
// uses CAFile ca.pem and, for mutual TLS, CertFile client.pem and KeyFile
// client-key.pem; both use TokenFile token.
func WriteDevCerts(dir string, hosts []string) error {
	if dir == "" {
		return errors.New("security: dev certs: no directory given")
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	dns := []string{"localhost"}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
			continue
		}
		if err := checkDNSName(h); err != nil {
			return err
		}
		if !slices.Contains(dns, strings.ToLower(h)) {
			dns = append(dns, strings.ToLower(h))
		}
	}
	names := []string{CAFileName, CAKeyFileName, ServerFileName, ServerKeyFileName, ClientFileName, ClientKeyFileName, TokenFileName}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("security: dev certs: %s exists; refusing to overwrite (remove it or choose another directory)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("security: dev certs: %w", err)
		}
	}

	now := time.Now().Add(-devBackdate)
	caKey, caCert, caDER, err := newCA(now)
	if err != nil {
		return err
	}
	caKeyPEM, err := keyToPEM(caKey)
	if err != nil {
		return err
	}
	serverKey, serverDER, err := newLeaf(caCert, caKey, &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"fedmo development"}, CommonName: "fedmo server"},
		NotBefore:   now,
		NotAfter:    now.Add(devLeafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: bothUsages,
		IPAddresses: ips,
		DNSNames:    dns,
	})
	if err != nil {
		return err
	}
	clientKey, clientDER, err := newLeaf(caCert, caKey, &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"fedmo development"}, CommonName: "fedmo client"},
		NotBefore:   now,
		NotAfter:    now.Add(devLeafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: bothUsages,
		IPAddresses: ips,
		DNSNames:    dns,
	})
	if err != nil {
		return err
	}
	var token [32]byte
	if _, err := rand.Read(token[:]); err != nil {
		return fmt.Errorf("security: dev certs: token: %w", err)
	}

	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{CAFileName, certPEM(caDER), 0o644},
		{CAKeyFileName, caKeyPEM, 0o600},
		{ServerFileName, certPEM(serverDER), 0o644},
		{ServerKeyFileName, serverKey, 0o600},
		{ClientFileName, certPEM(clientDER), 0o644},
		{ClientKeyFileName, clientKey, 0o600},
		{TokenFileName, []byte(base64.RawURLEncoding.EncodeToString(token[:]) + "\n"), 0o600},
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("security: dev certs: %w", err)
	}
	for i, f := range files {
		if err := writeNew(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			for _, g := range files[:i] { // all or nothing
				os.Remove(filepath.Join(dir, g.name))
			}
			return err
		}
	}
	return nil
}

// checkDNSName accepts names such as "node-1.example" or "*.example".
func checkDNSName(h string) error {
	ok := h != "" && len(h) <= 253
	for i, label := range strings.Split(h, ".") {
		if !ok {
			break
		}
		if i == 0 && label == "*" {
			continue
		}
		ok = label != "" && len(label) <= 63 && label[0] != '-' && label[len(label)-1] != '-'
		for _, c := range label {
			ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-')
		}
	}
	if !ok {
		return fmt.Errorf("security: dev certs: host %q is neither an IP address nor a DNS name", h)
	}
	return nil
}

// writeNew creates file, failing if it exists, and removes it again if
// the write fails.
func writeNew(file string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("security: dev certs: %s exists; refusing to overwrite", file)
		}
		return fmt.Errorf("security: dev certs: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return fmt.Errorf("security: dev certs: %w", err)
	}
	return nil
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("security: dev certs: serial number: %w", err)
	}
	return n, nil
}

// newCA returns a self-signed CA: its key, certificate and DER.
func newCA(now time.Time) (*ecdsa.PrivateKey, *x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("security: dev certs: CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{Organization: []string{"fedmo development"}, CommonName: "fedmo development CA"},
		NotBefore:             now,
		NotAfter:              now.Add(devCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("security: dev certs: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("security: dev certs: CA certificate: %w", err)
	}
	return key, cert, der, nil
}

// newLeaf makes a key and a certificate from tmpl signed by the CA, and
// returns the key as PKCS #8 PEM and the certificate's DER.
func newLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("security: dev certs: %s key: %w", tmpl.Subject.CommonName, err)
	}
	if tmpl.SerialNumber, err = serial(); err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("security: dev certs: %s certificate: %w", tmpl.Subject.CommonName, err)
	}
	keyPEM, err := keyToPEM(key)
	return keyPEM, der, err
}

func keyToPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("security: dev certs: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
