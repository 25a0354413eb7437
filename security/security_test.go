package security

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
)

// TestMain fails the package if a test leaves a goroutine behind (a gRPC
// server or connection not stopped).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const panicVersion = 666 // makes the fake handlers panic

type coordinator struct {
	fedmov1.UnimplementedCoordinatorServiceServer
}

func (coordinator) GetConfig(_ context.Context, req *fedmov1.GetConfigRequest) (*fedmov1.GetConfigResponse, error) {
	if req.ProtocolVersion == panicVersion {
		panic("fake GetConfig asked to panic")
	}
	return &fedmov1.GetConfigResponse{ProtocolVersion: req.ProtocolVersion, ConfigSha256: "fake"}, nil
}

type trainer struct {
	fedmov1.UnimplementedClientServiceServer
}

// Train answers a header with an UpdateHeader naming the header's round.
func (trainer) Train(stream grpc.BidiStreamingServer[fedmov1.TrainRequest, fedmov1.TrainResponse]) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	h := req.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "want a header")
	}
	if h.ProtocolVersion == panicVersion {
		panic("fake Train asked to panic")
	}
	return stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Update{Update: &fedmov1.UpdateHeader{Client: h.Round}}})
}

// serve starts a server with o's options on an ephemeral 127.0.0.1 port
// and returns its address; the test's cleanup stops it.
func serve(t *testing.T, o Options) string {
	t.Helper()
	opts, err := ServerOptions(o)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	fedmov1.RegisterCoordinatorServiceServer(s, coordinator{})
	fedmov1.RegisterClientServiceServer(s, trainer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

func dial(t *testing.T, addr string, o Options) *grpc.ClientConn {
	t.Helper()
	opts, err := DialOptions(o)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// unary calls GetConfig.
func unary(t *testing.T, cc *grpc.ClientConn, version uint32) error {
	t.Helper()
	resp, err := fedmov1.NewCoordinatorServiceClient(cc).GetConfig(ctx(t), &fedmov1.GetConfigRequest{ProtocolVersion: version})
	if err == nil && (resp.ProtocolVersion != version || resp.ConfigSha256 != "fake") {
		t.Errorf("GetConfig answered %v", resp)
	}
	return err
}

// streaming runs one Train exchange.
func streaming(t *testing.T, cc *grpc.ClientConn, version uint32) error {
	t.Helper()
	st, err := fedmov1.NewClientServiceClient(cc).Train(ctx(t))
	if err != nil {
		return err
	}
	if err := st.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Header{Header: &fedmov1.TrainHeader{ProtocolVersion: version, Round: 7}}}); err != nil && err != io.EOF {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	resp, err := st.Recv()
	if err != nil {
		return err
	}
	if resp.GetUpdate().GetClient() != 7 {
		t.Errorf("Train answered %v", resp)
	}
	if _, err := st.Recv(); err != io.EOF {
		return err
	}
	return nil
}

func devPKI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteDevCerts(dir, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: code %s (err %v), want %s", what, got, err, want)
	}
}

func TestTLS(t *testing.T) {
	pki := devPKI(t)
	p := func(name string) string { return filepath.Join(pki, name) }
	addr := serve(t, Options{CertFile: p(ServerFileName), KeyFile: p(ServerKeyFileName)})

	for _, name := range []string{"", "localhost"} {
		cc := dial(t, addr, Options{CAFile: p(CAFileName), ServerName: name})
		wantCode(t, "TLS, server name "+name, unary(t, cc, 1), codes.OK)
		wantCode(t, "TLS stream, server name "+name, streaming(t, cc, 1), codes.OK)
	}
	other := devPKI(t)
	cc := dial(t, addr, Options{CAFile: filepath.Join(other, CAFileName)})
	wantCode(t, "client that does not trust the CA", unary(t, cc, 1), codes.Unavailable)
	cc = dial(t, addr, Options{CAFile: p(CAFileName), ServerName: "fedmo.invalid"})
	wantCode(t, "server name not in the certificate", unary(t, cc, 1), codes.Unavailable)
	cc = dial(t, addr, Options{Insecure: true})
	wantCode(t, "plaintext client", unary(t, cc, 1), codes.Unavailable)
}

func TestMutualTLS(t *testing.T) {
	pki := devPKI(t)
	p := func(name string) string { return filepath.Join(pki, name) }
	addr := serve(t, Options{CertFile: p(ServerFileName), KeyFile: p(ServerKeyFileName), CAFile: p(CAFileName)})

	cc := dial(t, addr, Options{CertFile: p(ClientFileName), KeyFile: p(ClientKeyFileName), CAFile: p(CAFileName)})
	wantCode(t, "mTLS", unary(t, cc, 1), codes.OK)
	wantCode(t, "mTLS stream", streaming(t, cc, 1), codes.OK)

	// TLS 1.3 refuses a missing client certificate after the handshake,
	// so the message varies; the code does not.
	cc = dial(t, addr, Options{CAFile: p(CAFileName)})
	wantCode(t, "client without a certificate", unary(t, cc, 1), codes.Unavailable)
	cc = dial(t, addr, Options{CAFile: p(CAFileName)})
	wantCode(t, "client without a certificate, stream", streaming(t, cc, 1), codes.Unavailable)

	other := devPKI(t)
	q := func(name string) string { return filepath.Join(other, name) }
	cc = dial(t, addr, Options{CertFile: q(ClientFileName), KeyFile: q(ClientKeyFileName), CAFile: p(CAFileName)})
	wantCode(t, "client certificate from another CA", unary(t, cc, 1), codes.Unavailable)
	cc = dial(t, addr, Options{CertFile: p(ClientFileName), KeyFile: p(ClientKeyFileName), CAFile: q(CAFileName)})
	wantCode(t, "client that does not trust the CA", unary(t, cc, 1), codes.Unavailable)
	// Every fedmo process serves and dials with one certificate: the
	// coordinator's (server.pem) works as a client certificate too.
	cc = dial(t, addr, Options{CertFile: p(ServerFileName), KeyFile: p(ServerKeyFileName), CAFile: p(CAFileName)})
	wantCode(t, "the coordinator's certificate used to dial", unary(t, cc, 1), codes.OK)
}

func TestToken(t *testing.T) {
	pki := devPKI(t)
	p := func(name string) string { return filepath.Join(pki, name) }
	token, err := os.ReadFile(p(TokenFileName))
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("  not-the-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct {
		name           string
		server, client Options
	}{
		{"insecure", Options{Insecure: true}, Options{Insecure: true}},
		{"mTLS",
			Options{CertFile: p(ServerFileName), KeyFile: p(ServerKeyFileName), CAFile: p(CAFileName)},
			Options{CertFile: p(ClientFileName), KeyFile: p(ClientKeyFileName), CAFile: p(CAFileName)}},
	} {
		server := mode.server
		server.TokenFile = p(TokenFileName)
		addr := serve(t, server)
		for _, tc := range []struct {
			name      string
			tokenFile string
			want      codes.Code
			msg       string
		}{
			{"missing token", "", codes.Unauthenticated, "missing token"},
			{"wrong token", wrong, codes.Unauthenticated, "wrong token"},
			{"right token", p(TokenFileName), codes.OK, ""},
		} {
			client := mode.client
			client.TokenFile = tc.tokenFile
			cc := dial(t, addr, client)
			for call, err := range map[string]error{"unary": unary(t, cc, 1), "stream": streaming(t, cc, 1)} {
				what := mode.name + ", " + tc.name + ", " + call
				wantCode(t, what, err, tc.want)
				if err != nil && (!strings.Contains(err.Error(), tc.msg) ||
					strings.Contains(err.Error(), "not-the-token") || strings.Contains(err.Error(), strings.TrimSpace(string(token)))) {
					t.Errorf("%s: message %q, want it to say %q and not to echo a token", what, err, tc.msg)
				}
			}
		}
	}
}

func TestTokenMetadata(t *testing.T) {
	pki := devPKI(t)
	tokenFile := filepath.Join(pki, TokenFileName)
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	addr := serve(t, Options{Insecure: true, TokenFile: tokenFile})
	cc := dial(t, addr, Options{Insecure: true})
	client := fedmov1.NewCoordinatorServiceClient(cc)
	for _, tc := range []struct {
		name string
		kv   []string
		want codes.Code
	}{
		{"bearer", []string{"authorization", "Bearer " + token}, codes.OK},
		{"lower-case scheme", []string{"authorization", "bearer " + token}, codes.OK},
		{"no scheme", []string{"authorization", token}, codes.Unauthenticated},
		{"basic", []string{"authorization", "Basic " + token}, codes.Unauthenticated},
		{"prefix of the token", []string{"authorization", "Bearer " + token[:len(token)-1]}, codes.Unauthenticated},
		{"token twice", []string{"authorization", "Bearer " + token, "authorization", "Bearer " + token}, codes.Unauthenticated},
		{"empty", []string{"authorization", ""}, codes.Unauthenticated},
		{"other key", []string{"token", token}, codes.Unauthenticated},
	} {
		c := metadata.AppendToOutgoingContext(ctx(t), tc.kv...)
		_, err := client.GetConfig(c, &fedmov1.GetConfigRequest{})
		wantCode(t, tc.name, err, tc.want)
		if err != nil && strings.Contains(err.Error(), token[:8]) {
			t.Errorf("%s: message %q echoes the token", tc.name, err)
		}
	}
}

func TestPanicRecovery(t *testing.T) {
	pki := devPKI(t)
	addr := serve(t, Options{Insecure: true, TokenFile: filepath.Join(pki, TokenFileName)})
	cc := dial(t, addr, Options{Insecure: true, TokenFile: filepath.Join(pki, TokenFileName)})
	for range 2 {
		wantCode(t, "panicking unary handler", unary(t, cc, panicVersion), codes.Internal)
		wantCode(t, "unary after a panic", unary(t, cc, 1), codes.OK)
		wantCode(t, "panicking stream handler", streaming(t, cc, panicVersion), codes.Internal)
		wantCode(t, "stream after a panic", streaming(t, cc, 1), codes.OK)
	}
	err := unary(t, cc, panicVersion)
	if !strings.Contains(err.Error(), "GetConfig") || strings.Contains(err.Error(), "asked to panic") {
		t.Errorf("message %q, want the method and not the panic value", err)
	}
}

func TestOptionErrors(t *testing.T) {
	pki := devPKI(t)
	p := func(name string) string { return filepath.Join(pki, name) }
	tmp := t.TempDir()
	file := func(name, content string) string {
		f := filepath.Join(tmp, name)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	empty := file("empty", " \n\t")
	spaced := file("spaced", "two words\n")
	junk := file("junk.pem", "not PEM")
	missing := filepath.Join(tmp, "missing.pem")
	expired, expiredKey := expiredCert(t, pki, tmp)

	for _, tc := range []struct {
		name   string
		o      Options
		server bool
		client bool
		want   string // in the message
	}{
		{"zero options", Options{}, true, false, "needs CertFile and KeyFile"},
		{"insecure with a certificate", Options{Insecure: true, CertFile: p(ServerFileName), KeyFile: p(ServerKeyFileName)}, true, true, "Insecure excludes"},
		{"insecure with a CA", Options{Insecure: true, CAFile: p(CAFileName)}, true, true, "Insecure excludes"},
		{"certificate without key", Options{CertFile: p(ServerFileName)}, true, true, "both or neither"},
		{"missing certificate", Options{CertFile: missing, KeyFile: p(ServerKeyFileName)}, true, true, missing},
		{"missing key", Options{CertFile: p(ServerFileName), KeyFile: missing}, true, true, missing},
		{"junk certificate", Options{CertFile: junk, KeyFile: p(ServerKeyFileName)}, true, true, junk},
		{"key of another certificate", Options{CertFile: p(ServerFileName), KeyFile: p(ClientKeyFileName)}, true, true, "does not match"},
		{"expired certificate", Options{CertFile: expired, KeyFile: expiredKey}, true, true, "not now"},
		{"missing CA", Options{CertFile: p(ServerFileName), KeyFile: p(ServerKeyFileName), CAFile: missing}, true, true, missing},
		{"junk CA", Options{CertFile: p(ServerFileName), KeyFile: p(ServerKeyFileName), CAFile: junk}, true, true, junk + " holds no PEM"},
		{"missing token", Options{Insecure: true, TokenFile: missing}, true, true, missing},
		{"empty token", Options{Insecure: true, TokenFile: empty}, true, true, empty + " is empty"},
		{"token with a space", Options{Insecure: true, TokenFile: spaced}, true, true, spaced},
	} {
		if tc.server {
			_, err := ServerOptions(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "security: ") {
				t.Errorf("server, %s: err = %v, want a security: error containing %q", tc.name, err, tc.want)
			}
		}
		if tc.client {
			_, err := DialOptions(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "security: ") {
				t.Errorf("client, %s: err = %v, want a security: error containing %q", tc.name, err, tc.want)
			}
		}
	}
	// A client may trust the system's roots.
	if _, err := DialOptions(Options{}); err != nil {
		t.Errorf("client with zero Options: %v", err)
	}
}

// expiredCert writes a certificate signed by pki's CA that expired
// yesterday, and its key.
func expiredCert(t *testing.T, pki, dir string) (certFile, keyFile string) {
	t.Helper()
	caPEM, _ := os.ReadFile(filepath.Join(pki, CAFileName))
	caKeyPEM, _ := os.ReadFile(filepath.Join(pki, CAKeyFileName))
	cb, _ := pem.Decode(caPEM)
	kb, _ := pem.Decode(caKeyPEM)
	if cb == nil || kb == nil {
		t.Fatal("dev CA files are not PEM")
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, der, err := newLeaf(ca, caKey.(*ecdsa.PrivateKey), &x509.Certificate{
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "expired.pem"), filepath.Join(dir, "expired-key.pem")
	if err := os.WriteFile(certFile, certPEM(der), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestPanicIsLogged(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	addr := serve(t, Options{Insecure: true, Logger: zap.New(core)})
	cc := dial(t, addr, Options{Insecure: true})
	wantCode(t, "panicking stream handler", streaming(t, cc, panicVersion), codes.Internal)
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d log entries, want 1", len(entries))
	}
	f := entries[0].ContextMap()
	if f["method"] != "/fedmo.v1.ClientService/Train" || !strings.Contains(f["panic"].(string), "asked to panic") || !strings.Contains(f["stack"].(string), "Train") {
		t.Errorf("log entry %v, want the method, the panic value and the stack", f)
	}
}
