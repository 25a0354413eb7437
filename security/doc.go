// Package security configures how fedmo processes trust each other over
// gRPC: TLS, mutual TLS and a shared token, plus the transport settings
// that every fedmo connection uses (keepalive, message limits, panic
// recovery). It also writes development certificates (WriteDevCerts).
//
// One Options value describes one process. ServerOptions turns it into
// the options of the gRPC server that process runs, DialOptions into the
// options of the connections it opens; a client process that both serves
// ClientService and calls CoordinatorService uses both from the same
// Options.
//
// # Modes
//
//	Insecure                       plaintext HTTP/2, no identity at all
//	CertFile+KeyFile               TLS: clients verify the server
//	  + CAFile on the server       mutual TLS: the server also requires a
//	                               client certificate signed by that CA
//	  + CertFile+KeyFile on a      the client presents it (mutual TLS)
//	    client
//	TokenFile (with any of them)   every RPC must carry the shared token
//
// Plaintext is never a default: without CertFile and KeyFile a server
// refuses to start unless Insecure is set, and a client speaks TLS unless
// Insecure is set.
//
// # The token, with and without TLS
//
// The token is a shared secret read from TokenFile. A client sends it on
// every RPC as the metadata "authorization: Bearer <token>"; the server
// checks it in a unary and a stream interceptor with a constant-time
// comparison and answers codes.Unauthenticated, saying whether the token
// was missing or wrong, never what it was.
//
// The token may be combined with Insecure, for runs on one machine or a
// trusted private network. The trade-off: without TLS the token crosses
// the network in clear text, so anyone who can observe the traffic can
// read it and replay it, and can also read or alter the models in flight;
// it then only keeps out processes that were not given the token (a
// stray client of another experiment, a port scan). Over TLS the token is
// encrypted and the server is authenticated; with mutual TLS the token is
// a second factor. In the Insecure mode the client's per-RPC credentials
// do not require transport security, which is what allows the combination.
//
// # Transport settings
//
// Both sides use the same keepalive (a client pings after 30 s of silence,
// which the server permits down to 15 s, with or without open streams), so
// an idle connection between rounds stays up and a dead peer is noticed
// within about 40 s. Messages are limited to MaxMessageBytes in both
// directions: vectors travel in chunks of at most 1 MiB (package wire), so
// only a broken or hostile peer sends more. A panic in a handler becomes
// codes.Internal for that RPC and is logged; the server keeps serving.
//
// Both sides also use gRPC's protobuf encoding with two changes for
// vector chunks: a buffer pool sized for them that does not zero its
// buffers (gRPC's default pool rounds a 256 KiB chunk up to a 1 MiB
// buffer and clears it), and chunk data decoded into buffers that
// wire.ReceiveVector recycles. Together they made a model transfer over
// loopback about 70% faster (BenchmarkTransfer in package wire, two A/B
// runs compounded). They use
// gRPC APIs marked experimental (grpc.ForceServerCodecV2,
// grpc.ForceCodecV2, experimental.BufferPool, experimental.WithBufferPool);
// the wire format is plain gRPC with protobuf, so any gRPC peer
// interoperates.
package security
