package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
)

// Options describes how one fedmo process secures its gRPC server and the
// connections it opens. The zero value is rejected: choose TLS (CertFile
// and KeyFile, at least on a server) or set Insecure.
type Options struct {
	// Insecure turns TLS off on both sides: plaintext HTTP/2. It excludes
	// CertFile, KeyFile and CAFile. Use it only on one machine or a trusted
	// network (see the package documentation); TokenFile still applies.
	Insecure bool

	// CertFile and KeyFile are this process's PEM certificate and private
	// key, both or neither. A server requires them unless Insecure; a
	// client presents them to the server, for mutual TLS.
	CertFile, KeyFile string

	// CAFile is a PEM file of the CA certificates this process trusts. On
	// a server it turns on mutual TLS: every client must present a
	// certificate that chains to one of them
	// (tls.RequireAndVerifyClientCert). On a client it verifies the
	// server's certificate; empty means the system's roots.
	CAFile string

	// ServerName is the name a client verifies in the server's certificate
	// (client only). Empty means the host of the address dialled, which
	// for 127.0.0.1:PORT is the IP address 127.0.0.1.
	ServerName string

	// TokenFile holds the shared token, surrounding white space ignored.
	// A server then requires it on every RPC and a client sends it on
	// every RPC. Empty means no token.
	TokenFile string

	// Logger receives the panics the server recovers from. Nil means no
	// logging.
	Logger *zap.Logger
}

// MaxMessageBytes is the largest gRPC message a fedmo process sends or
// receives: four times the largest chunk of package wire (1 MiB of data),
// leaving room for the largest TrainHeader and GetConfigResponse. It is
// the gRPC default receive limit, set explicitly on both sides and for
// sending as well, so that an oversized message fails at its sender.
const MaxMessageBytes = 4 << 20

// Keepalive settings, the same for every fedmo connection. The server's
// enforcement MinTime must stay below the client's Time, or the server
// closes the connection with GOAWAY "too_many_pings".
const (
	clientPingAfter   = 30 * time.Second // client: ping after this much silence
	pingTimeout       = 10 * time.Second // both: close if the ping is not answered in time
	serverMinPingTime = 15 * time.Second // server: clients may ping this often
	serverPingAfter   = 60 * time.Second // server: ping an idle client after this much silence
)

// sharedPool serves every fedmo server and connection of the process.
//
// Measured with BenchmarkTransfer in package wire (10M parameters,
// GOMAXPROCS=2, loopback, A/B runs of 8 to 10 repetitions): this pool
// with its codec raised a one-way transfer from a median 759 to 974 MB/s,
// and decoding chunk data into recycled buffers (the codec's use of
// wire.UnmarshalVectorMessage) from 973 to 1314 MB/s. Read and write buffers of 32 KiB
// (gRPC's default) to 1 MiB, and fixed flow-control windows of 1 to 16 MiB
// instead of gRPC's BDP estimation, made no difference beyond the noise,
// so those stay at gRPC's defaults. gRPC v1.85 shares write buffers
// between connections by default (grpc.SharedWriteBuffer is deprecated).
var sharedPool = new(bufferPool)

// ServerOptions returns the options for a fedmo gRPC server: transport
// credentials, keepalive, message limits, and interceptors that recover
// from handler panics and, with TokenFile, check the token on every RPC.
func ServerOptions(o Options) ([]grpc.ServerOption, error) {
	creds, err := o.serverCredentials()
	if err != nil {
		return nil, err
	}
	var token []byte
	if o.TokenFile != "" {
		if token, err = readToken(o.TokenFile); err != nil {
			return nil, err
		}
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	unary := []grpc.UnaryServerInterceptor{recoverUnary(log)}
	stream := []grpc.StreamServerInterceptor{recoverStream(log)}
	if token != nil {
		a := newAuthenticator(token)
		unary = append(unary, a.unary)
		stream = append(stream, a.stream)
	}
	return []grpc.ServerOption{
		grpc.Creds(creds),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             serverMinPingTime,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    serverPingAfter,
			Timeout: pingTimeout,
		}),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.ForceServerCodecV2(codec{pool: sharedPool}),
		experimental.BufferPool(sharedPool),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}, nil
}

// DialOptions returns the options for a connection from a fedmo process:
// transport credentials, keepalive, message limits and, with TokenFile,
// the token on every RPC. Use them with grpc.NewClient.
func DialOptions(o Options) ([]grpc.DialOption, error) {
	creds, err := o.clientCredentials()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                clientPingAfter,
			Timeout:             pingTimeout,
			PermitWithoutStream: true,
		}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
			grpc.ForceCodecV2(codec{pool: sharedPool}),
		),
		experimental.WithBufferPool(sharedPool),
	}
	if o.TokenFile != "" {
		token, err := readToken(o.TokenFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCredentials{
			header: "Bearer " + string(token), secure: !o.Insecure,
		}))
	}
	return opts, nil
}

// validate checks what both sides share.
func (o Options) validate() error {
	if o.Insecure && (o.CertFile != "" || o.KeyFile != "" || o.CAFile != "") {
		return errors.New("security: Insecure excludes CertFile, KeyFile and CAFile (plaintext or TLS, not both)")
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return fmt.Errorf("security: CertFile %q and KeyFile %q: give both or neither", o.CertFile, o.KeyFile)
	}
	return nil
}

func (o Options) serverCredentials() (credentials.TransportCredentials, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Insecure {
		return insecure.NewCredentials(), nil
	}
	if o.CertFile == "" {
		return nil, errors.New("security: a server needs CertFile and KeyFile for TLS, or Insecure for plaintext")
	}
	cert, err := loadKeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if o.CAFile != "" {
		if cfg.ClientCAs, err = loadCAs(o.CAFile); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(cfg), nil
}

func (o Options) clientCredentials() (credentials.TransportCredentials, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Insecure {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{ServerName: o.ServerName, MinVersion: tls.VersionTLS13}
	if o.CertFile != "" {
		cert, err := loadKeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if o.CAFile != "" {
		var err error
		if cfg.RootCAs, err = loadCAs(o.CAFile); err != nil {
			return nil, err
		}
	}
	return credentials.NewTLS(cfg), nil
}

// loadKeyPair reads a certificate and its key, and refuses a certificate
// that is not valid now.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("security: certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("security: key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("security: certificate file %s with key file %s: %w", certFile, keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("security: certificate file %s: %w", certFile, err)
		}
	}
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return tls.Certificate{}, fmt.Errorf("security: certificate file %s is valid from %s to %s, not now",
			certFile, leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	return cert, nil
}

// loadCAs reads a PEM bundle of CA certificates.
func loadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("security: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("security: CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
