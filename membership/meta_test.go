package membership

import (
	"bytes"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	tests := []Meta{
		{Role: Coordinator, GRPC: "127.0.0.1:50051", Protocol: 1, Capacity: 1, Real: -1},
		{Role: Client, GRPC: "[::1]:9000", Protocol: 7, Config: fpA, Capacity: 64, Real: 0},
		{Role: Client, GRPC: "worker-17.cluster.example:65535", Protocol: 1<<32 - 1, Config: fpB, Capacity: 1<<31 - 1, Real: 1 << 40},
		{Role: Client, GRPC: "127.0.0.1:40000", Protocol: 2, Config: fpA, Capacity: 1, Real: -1, Shared: "0123456789abcdef"},
	}
	for _, m := range tests {
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode(%+v): %v", m, err)
		}
		got, err := DecodeMeta(b)
		if err != nil || got != m {
			t.Errorf("DecodeMeta(Encode(%+v)) = %+v, %v", m, got, err)
		}
	}
	// A typical client meta is small.
	b, _ := tests[3].Encode()
	if len(b) > 70 {
		t.Errorf("typical meta is %d bytes, want <= 70", len(b))
	}
}

func TestMetaSizeLimit(t *testing.T) {
	m := Meta{Role: Client, Protocol: 1, Config: fpA, Capacity: 1, Real: -1}
	// Find the longest gRPC host that fits: exactly 512 bytes encoded.
	fits := 0
	for n := 400; n < 600; n++ {
		m.GRPC = strings.Repeat("h", n) + ":1"
		if b, err := m.Encode(); err == nil {
			if len(b) > MetaMaxSize {
				t.Fatalf("Encode returned %d bytes", len(b))
			}
			fits = len(m.GRPC)
		} else if !strings.Contains(err.Error(), "exceeds memberlist's limit of 512") {
			t.Fatalf("Encode: %v", err)
		}
	}
	if fits < 450 {
		t.Errorf("longest gRPC address that fits is %d bytes, want >= 450", fits)
	}
	if _, err := DecodeMeta(make([]byte, MetaMaxSize+1)); err == nil {
		t.Errorf("DecodeMeta accepted %d bytes", MetaMaxSize+1)
	}
}

func TestMetaInvalid(t *testing.T) {
	ok := Meta{Role: Client, GRPC: "127.0.0.1:1", Protocol: 1, Capacity: 1, Real: -1}
	tests := []struct {
		name string
		edit func(*Meta)
		want string
	}{
		{"role", func(m *Meta) { m.Role = "server" }, `unknown role "server"`},
		{"grpc no port", func(m *Meta) { m.GRPC = "127.0.0.1" }, "missing port"},
		{"grpc no host", func(m *Meta) { m.GRPC = ":50051" }, "has no host"},
		{"grpc port 0", func(m *Meta) { m.GRPC = "h:0" }, "port must be 1..65535"},
		{"grpc port name", func(m *Meta) { m.GRPC = "h:grpc" }, "port must be 1..65535"},
		{"protocol 0", func(m *Meta) { m.Protocol = 0 }, "protocol version 0"},
		{"config short", func(m *Meta) { m.Config = "abcd" }, "not 64 hex digits"},
		{"config upper", func(m *Meta) { m.Config = strings.ToUpper(fpA) }, "not lowercase hex"},
		{"capacity", func(m *Meta) { m.Capacity = 0 }, "capacity 0 out of range"},
		{"real", func(m *Meta) { m.Real = -2 }, "real client id -2"},
		{"shared short", func(m *Meta) { m.Shared = "abcd" }, "not 16 lowercase hex digits"},
		{"shared upper", func(m *Meta) { m.Shared = "0123456789ABCDEF" }, "not 16 lowercase hex digits"},
	}
	for _, tt := range tests {
		m := ok
		tt.edit(&m)
		if _, err := m.Encode(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Encode error = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestDecodeMetaRejects(t *testing.T) {
	good, _ := Meta{Role: Client, GRPC: "127.0.0.1:1", Protocol: 3, Config: fpA, Capacity: 1, Real: -1}.Encode()
	newer := append([]byte{3}, good[1:]...)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"newer format", newer, "format 3 of protocol version 3, this build reads format 2"},
		{"truncated", good[:len(good)-1], "shared directory id"},
		{"truncated digest", good[:len(good)-2], "config fingerprint"},
		{"shared id length", append(bytes.Clone(good[:len(good)-1]), 3, 1, 2, 3), "shared directory id of 3 bytes"},
		{"trailing", append(append([]byte{}, good...), 0), "1 trailing bytes"},
		{"role", func() []byte { b := bytes.Clone(good); b[2] = 9; return b }(), "unknown role code 9"},
		{"json", []byte(`{"role":"client"}`), "format 123"},
	}
	for _, tt := range tests {
		if _, err := DecodeMeta(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: DecodeMeta error = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// FuzzDecodeMeta: DecodeMeta never panics, and whatever it accepts is valid
// and re-encodes to the same bytes (the encoding is canonical).
func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{
		{Role: Coordinator, GRPC: "127.0.0.1:50051", Protocol: 1, Capacity: 1, Real: -1},
		{Role: Client, GRPC: "[::1]:9000", Protocol: 2, Config: fpA, Capacity: 8, Real: 12},
		{Role: Client, GRPC: "[::1]:9000", Protocol: 2, Config: fpA, Capacity: 8, Real: -1, Shared: "00000000deadbeef"},
	} {
		b, _ := m.Encode()
		f.Add(b)
	}
	f.Add([]byte{1, 0})
	f.Add([]byte{2, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("DecodeMeta accepted invalid %+v: %v", m, err)
		}
		out, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode(DecodeMeta(%x)) = %v", b, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("not canonical: %x decodes to %+v which encodes to %x", b, m, out)
		}
	})
}

func TestIncompatible(t *testing.T) {
	co := Meta{Role: Coordinator, Protocol: 1, Config: fpA}
	cl := Meta{Role: Client, Protocol: 1, Config: fpB}
	tests := []struct {
		j, e Meta
		want string
	}{
		{cl, co, "config fingerprint bbbbbbbbbbbb… differs from the coordinator's aaaaaaaaaaaa…"},
		{co, cl, "the coordinator's config fingerprint aaaaaaaaaaaa… differs from this client's bbbbbbbbbbbb…"},
		{cl, Meta{Role: Client, Protocol: 1, Config: fpA}, ""}, // clients are not compared
		{Meta{Role: Client, Protocol: 1}, co, ""},              // unknown fingerprint
		{Meta{Role: Client, Protocol: 2, Config: fpA}, co, "protocol version 2, want 1"},
		{Meta{Role: Coordinator, Protocol: 1, Config: fpB}, co, "config fingerprint bbbbbbbbbbbb… differs from the coordinator's aaaaaaaaaaaa…"},
	}
	for _, tt := range tests {
		if got := incompatible(tt.j, tt.e); got != tt.want {
			t.Errorf("incompatible(%+v, %+v) = %q, want %q", tt.j, tt.e, got, tt.want)
		}
		if (incompatible(tt.j, tt.e) == "") != (incompatible(tt.e, tt.j) == "") {
			t.Errorf("verdict not symmetric for %+v, %+v", tt.j, tt.e)
		}
	}
}
