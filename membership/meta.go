package membership

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"unicode/utf8"
)

// Role of a process in a fedmo cluster.
type Role string

// The roles a member can advertise.
const (
	Coordinator Role = "coordinator"
	Client      Role = "client"
)

// ProtocolVersion is the version of fedmo's control and data plane that this
// build speaks. Processes with different versions refuse each other at join.
// Version 2 added vectors passed through a shared directory (VectorRef).
const ProtocolVersion uint32 = 2

// MetaMaxSize is memberlist's node-meta limit (memberlist.MetaMaxSize): an
// encoded Meta must not be longer. memberlist panics on longer meta; Encode,
// Start and SetMeta return an error instead.
const MetaMaxSize = 512

// metaFormat is the version of the binary Meta layout written by Encode.
const metaFormat byte = 2

// Role codes on the wire.
const (
	roleCoordinator byte = 1
	roleClient      byte = 2
)

// maxCapacity bounds Meta.Capacity so that it fits an int32 on every platform.
const maxCapacity = math.MaxInt32

// Meta is what every member advertises to the cluster in its memberlist node
// meta. Its encoding (see Encode) must fit in MetaMaxSize bytes, so bulky
// state (hosted client lists, model hashes) is served over gRPC instead.
type Meta struct {
	Role     Role   // Coordinator or Client
	GRPC     string // host:port of its gRPC service
	Protocol uint32 // ProtocolVersion of the build (>= 1)
	Config   string // config fingerprint: lowercase hex SHA-256 of the resolved config; "" if not known yet
	Capacity int    // worker goroutines it offers (>= 1)
	Real     int64  // for a real client with its own data: its client id (>= 0); -1 otherwise
	// Shared is the id of the shared directory (package wire/shm) this
	// process opened, 16 lowercase hex digits; "" for none.
	Shared string
}

// Validate reports whether m can be advertised: a known role, a host:port
// gRPC address with a non-empty host and a numeric port in 1..65535, protocol
// >= 1, a config fingerprint that is "" or 64 lowercase hex digits, capacity
// in 1..2^31-1, Real >= -1 and a shared directory id that is "" or 16
// lowercase hex digits.
func (m Meta) Validate() error {
	if _, err := m.Role.code(); err != nil {
		return err
	}
	if err := validGRPC(m.GRPC); err != nil {
		return err
	}
	if m.Protocol == 0 {
		return errors.New("membership: meta: protocol version 0 (want >= 1)")
	}
	if m.Config != "" {
		if _, err := configBytes(m.Config); err != nil {
			return err
		}
	}
	if m.Capacity < 1 || m.Capacity > maxCapacity {
		return fmt.Errorf("membership: meta: capacity %d out of range 1..%d", m.Capacity, maxCapacity)
	}
	if m.Real < -1 {
		return fmt.Errorf("membership: meta: real client id %d (want >= 0, or -1 for none)", m.Real)
	}
	if m.Shared != "" {
		if _, err := sharedBytes(m.Shared); err != nil {
			return err
		}
	}
	return nil
}

// Encode returns the compact binary form of m that memberlist carries as node
// meta. It returns an error, never panics, when m is invalid (see Validate)
// or its encoding exceeds MetaMaxSize bytes (in practice: a GRPC address of
// more than about 460 bytes).
//
// Layout, format 2 (all varints are encoding/binary's):
//
//	byte     format version (2)
//	uvarint  Protocol
//	byte     role: 1 coordinator, 2 client
//	uvarint  Capacity
//	varint   Real (zig-zag; -1 = not a real client)
//	uvarint  len(GRPC), then the GRPC bytes
//	byte     len of the raw config digest (0 or 32), then the digest
//	byte     len of the raw shared directory id (0 or 8), then the id
//
// Protocol comes right after the format byte so that a build that cannot
// read a newer format can still name the peer's protocol version. Decoders
// reject trailing bytes, so every valid encoding is canonical.
func (m Meta) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	role, _ := m.Role.code()
	var digest, shared []byte
	if m.Config != "" {
		digest, _ = configBytes(m.Config)
	}
	if m.Shared != "" {
		shared, _ = sharedBytes(m.Shared)
	}
	b := make([]byte, 0, 3+3*binary.MaxVarintLen64+len(m.GRPC)+2+len(digest)+len(shared))
	b = append(b, metaFormat)
	b = binary.AppendUvarint(b, uint64(m.Protocol))
	b = append(b, role)
	b = binary.AppendUvarint(b, uint64(m.Capacity))
	b = binary.AppendVarint(b, m.Real)
	b = binary.AppendUvarint(b, uint64(len(m.GRPC)))
	b = append(b, m.GRPC...)
	b = append(b, byte(len(digest)))
	b = append(b, digest...)
	b = append(b, byte(len(shared)))
	b = append(b, shared...)
	if len(b) > MetaMaxSize {
		return nil, fmt.Errorf("membership: meta: encoded size %d bytes exceeds memberlist's limit of %d (gRPC address is %d bytes)",
			len(b), MetaMaxSize, len(m.GRPC))
	}
	return b, nil
}

// DecodeMeta parses and validates meta written by Encode. It never panics on
// any input; every error names what is wrong.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) == 0 {
		return m, errors.New("membership: meta: empty")
	}
	if len(b) > MetaMaxSize {
		return m, fmt.Errorf("membership: meta: %d bytes exceeds the limit of %d", len(b), MetaMaxSize)
	}
	r := reader{b: b[1:]}
	proto, ok := r.uvarint()
	if ok && proto <= math.MaxUint32 {
		m.Protocol = uint32(proto)
	}
	if b[0] != metaFormat {
		if m.Protocol != 0 {
			return m, fmt.Errorf("membership: meta: format %d of protocol version %d, this build reads format %d", b[0], m.Protocol, metaFormat)
		}
		return m, fmt.Errorf("membership: meta: format %d, this build reads format %d", b[0], metaFormat)
	}
	if !ok || proto > math.MaxUint32 {
		return Meta{}, errors.New("membership: meta: bad protocol version field")
	}
	role, ok := r.byte()
	if !ok {
		return m, errors.New("membership: meta: truncated before role")
	}
	switch role {
	case roleCoordinator:
		m.Role = Coordinator
	case roleClient:
		m.Role = Client
	default:
		return m, fmt.Errorf("membership: meta: unknown role code %d", role)
	}
	capacity, ok := r.uvarint()
	if !ok {
		return m, errors.New("membership: meta: bad capacity field")
	}
	if capacity > maxCapacity {
		return m, fmt.Errorf("membership: meta: capacity %d out of range 1..%d", capacity, maxCapacity)
	}
	m.Capacity = int(capacity)
	if m.Real, ok = r.varint(); !ok {
		return m, errors.New("membership: meta: bad real client id field")
	}
	n, ok := r.uvarint()
	if !ok || n > uint64(len(r.b)) {
		return m, errors.New("membership: meta: bad gRPC address length")
	}
	grpc := r.next(int(n))
	if !utf8.Valid(grpc) {
		return m, errors.New("membership: meta: gRPC address is not UTF-8")
	}
	m.GRPC = string(grpc)
	dl, ok := r.byte()
	if !ok {
		return m, errors.New("membership: meta: truncated before config fingerprint")
	}
	switch {
	case dl == 0:
	case dl == 32 && len(r.b) >= 32:
		m.Config = hex.EncodeToString(r.next(32))
	default:
		return m, fmt.Errorf("membership: meta: config fingerprint of %d bytes (want 0 or 32)", dl)
	}
	sl, ok := r.byte()
	if !ok {
		return m, errors.New("membership: meta: truncated before shared directory id")
	}
	switch {
	case sl == 0:
	case sl == sharedIDBytes && len(r.b) >= sharedIDBytes:
		m.Shared = hex.EncodeToString(r.next(sharedIDBytes))
	default:
		return m, fmt.Errorf("membership: meta: shared directory id of %d bytes (want 0 or %d)", sl, sharedIDBytes)
	}
	if len(r.b) != 0 {
		return m, fmt.Errorf("membership: meta: %d trailing bytes", len(r.b))
	}
	if err := m.Validate(); err != nil {
		return m, err
	}
	return m, nil
}

// reader consumes a byte slice front to back.
type reader struct{ b []byte }

func (r *reader) byte() (byte, bool) {
	if len(r.b) == 0 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

func (r *reader) uvarint() (uint64, bool) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		return 0, false
	}
	r.b = r.b[n:]
	return v, true
}

func (r *reader) varint() (int64, bool) {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		return 0, false
	}
	r.b = r.b[n:]
	return v, true
}

func (r *reader) next(n int) []byte {
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r Role) code() (byte, error) {
	switch r {
	case Coordinator:
		return roleCoordinator, nil
	case Client:
		return roleClient, nil
	}
	return 0, fmt.Errorf("membership: meta: unknown role %q (want %q or %q)", string(r), Coordinator, Client)
}

func validGRPC(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("membership: meta: gRPC address %q: %v", addr, err)
	}
	if host == "" {
		return fmt.Errorf("membership: meta: gRPC address %q has no host", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fmt.Errorf("membership: meta: gRPC address %q: port must be 1..65535", addr)
	}
	return nil
}

func configBytes(fp string) ([]byte, error) {
	if len(fp) != 64 {
		return nil, fmt.Errorf("membership: meta: config fingerprint %q is not 64 hex digits (a SHA-256)", short(fp))
	}
	for i := 0; i < len(fp); i++ {
		c := fp[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, fmt.Errorf("membership: meta: config fingerprint %q is not lowercase hex", short(fp))
		}
	}
	d, err := hex.DecodeString(fp)
	if err != nil {
		return nil, fmt.Errorf("membership: meta: config fingerprint: %v", err)
	}
	return d, nil
}

// sharedIDBytes is the length of a raw shared directory id.
const sharedIDBytes = 8

func sharedBytes(id string) ([]byte, error) {
	d, err := hex.DecodeString(id)
	if err != nil || len(d) != sharedIDBytes || hex.EncodeToString(d) != id {
		return nil, fmt.Errorf("membership: meta: shared directory id %q is not %d lowercase hex digits", short(id), 2*sharedIDBytes)
	}
	return d, nil
}

// short abbreviates a fingerprint for messages: the first 12 characters and
// an ellipsis.
func short(fp string) string {
	const n = 12
	if len(fp) <= n {
		return fp
	}
	return fp[:n] + "…"
}
