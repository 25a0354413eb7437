package security

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// tokenMetadataKey is the metadata key that carries the token, as
// "Bearer <token>" (RFC 6750 section 2.1).
const tokenMetadataKey = "authorization"

const bearer = "Bearer "

// readToken reads a token file: surrounding white space is dropped, and
// the rest must be non-empty printable ASCII without spaces, so that it
// fits a metadata value.
func readToken(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("security: token: %w", err)
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return nil, fmt.Errorf("security: token file %s is empty", file)
	}
	for i, c := range t {
		if c < 0x21 || c > 0x7e {
			return nil, fmt.Errorf("security: token file %s: byte %d of the token is not printable ASCII (white space inside or a binary file?)", file, i)
		}
	}
	return t, nil
}

// tokenCredentials sends the token on every RPC.
type tokenCredentials struct {
	header string // "Bearer <token>"
	secure bool
}

func (c tokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{tokenMetadataKey: c.header}, nil
}

// RequireTransportSecurity is false only in the Insecure mode, where the
// token deliberately travels in clear text.
func (c tokenCredentials) RequireTransportSecurity() bool { return c.secure }

// authenticator checks the token on the server.
type authenticator struct {
	sum [sha256.Size]byte // SHA-256 of the token
}

func newAuthenticator(token []byte) *authenticator {
	return &authenticator{sum: sha256.Sum256(token)}
}

// check returns nil if the incoming metadata carry the token, else an
// Unauthenticated status that says what was wrong without repeating what
// was sent. Both sides are hashed first so that the comparison takes the
// same time whatever the length of the token sent.
func (a *authenticator) check(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(tokenMetadataKey)
	switch {
	case len(vals) == 0:
		return status.Error(codes.Unauthenticated, `security: missing token: the call has no "authorization" metadata (want "Bearer <token>")`)
	case len(vals) > 1:
		return status.Errorf(codes.Unauthenticated, `security: wrong token: the call has %d "authorization" values, want 1`, len(vals))
	case len(vals[0]) < len(bearer) || !strings.EqualFold(vals[0][:len(bearer)], bearer):
		return status.Error(codes.Unauthenticated, `security: wrong token: "authorization" is not "Bearer <token>"`)
	}
	sum := sha256.Sum256([]byte(vals[0][len(bearer):]))
	if subtle.ConstantTimeCompare(sum[:], a.sum[:]) != 1 {
		return status.Error(codes.Unauthenticated, "security: wrong token")
	}
	return nil
}

func (a *authenticator) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a *authenticator) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.check(ss.Context()); err != nil {
		return err
	}
	return handler(srv, ss)
}
