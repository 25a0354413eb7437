package membership

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
	"unicode"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// Profiles select memberlist's timing. See the package documentation for
// the settings and measured convergence and failure-detection times.
const (
	// ProfileLocal is for processes on one machine or a quiet LAN (fedmo
	// local, tests): memberlist.DefaultLocalConfig with RetransmitMult 4,
	// PushPullInterval 500 ms, ProbeInterval 200 ms, ProbeTimeout 100 ms,
	// GossipInterval 20 ms, SuspicionMult 2 and TCPTimeout 5 s. Measured
	// with 5 members: convergence about 30 ms, a Leave seen in about 30 ms,
	// a crash reported as Fail in about 1.0-1.2 s.
	ProfileLocal = "local"
	// ProfileLAN is memberlist.DefaultLANConfig unchanged (ProbeInterval
	// 1 s, ProbeTimeout 500 ms, SuspicionMult 4, PushPullInterval 30 s).
	// Measured with 5 members: convergence and Leave about 200 ms, a crash
	// reported as Fail in about 6.6 s.
	ProfileLAN = "lan"
)

// Defaults used when a Config field is zero.
const (
	DefaultBind        = "0.0.0.0:7946" // memberlist's default port
	DefaultEventBuffer = 1024
	// DefaultTimeout bounds Leave (in Close) and the update broadcast (in
	// SetMeta) when their ctx has no deadline.
	DefaultTimeout = 5 * time.Second
	maxNameLen     = 128
)

// Config configures a gossip member. The zero value is not usable: Meta must
// be valid. Start validates everything before it binds a socket.
type Config struct {
	// Name is the node name, unique in the cluster. "" means
	// "<role>-<host>-<port>-<6 random hex digits>". A Start whose name is
	// already held by a live member, or by a failed one the cluster still
	// remembers (memberlist's GossipToTheDeadTime: 15 s local, 30 s lan),
	// fails with a *RefusedError; a name whose holder left gracefully can be
	// reused at once. At most 128 bytes, no spaces or control characters.
	Name string
	// Bind is the host:port to bind TCP and UDP to; port 0 picks an
	// ephemeral port (read it back with Addr). "" means DefaultBind.
	// With host 0.0.0.0 memberlist advertises the first private IP.
	Bind string
	// Seeds are gossip addresses (host:port) of existing members to join.
	// Empty starts a new cluster. Seeds equal to this node's own address are
	// skipped.
	Seeds []string
	// Meta is what this member advertises; it must pass Meta.Validate and
	// encode within MetaMaxSize bytes.
	Meta Meta
	// Profile is ProfileLocal or ProfileLAN; "" means ProfileLAN.
	Profile string
	// KeyFile, if set, enables AES-GCM encryption of all gossip with the
	// key in this file (memberlist SecretKey). The file holds the key in
	// standard base64 (as `openssl rand -base64 32` or `consul keygen`
	// print it; surrounding whitespace is ignored) or as exactly 16, 24 or
	// 32 raw bytes. Base64 is tried first. All members need the same key.
	KeyFile string
	// Label, if set, is prefixed to every gossip packet and stream; members
	// with different labels cannot talk (at most 255 bytes).
	Label string
	// Accept, if set, may veto a peer by returning an error; the peer is
	// then ignored by this member, the reason is logged, and a peer that is
	// joining through this member gets the reason back from its Start. It
	// is called often (on every gossip of a peer's state), from memberlist's
	// goroutines: it must be fast, must not block and must be safe for
	// concurrent use.
	Accept func(Meta) error
	// Logger receives this package's logs; memberlist's own log lines are
	// bridged into it at Debug. nil means zap.NewNop().
	Logger *zap.Logger
	// EventBuffer is the capacity of the Events channel; 0 means
	// DefaultEventBuffer. When it is full the oldest event is dropped.
	EventBuffer int
}

// withDefaults returns a copy of c with zero fields defaulted and validates
// it. It does not read the key file.
func (c Config) withDefaults() (Config, error) {
	if c.Bind == "" {
		c.Bind = DefaultBind
	}
	if c.Profile == "" {
		c.Profile = ProfileLAN
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = DefaultEventBuffer
	}
	if _, err := c.Meta.Encode(); err != nil {
		return c, err
	}
	if c.Profile != ProfileLocal && c.Profile != ProfileLAN {
		return c, fmt.Errorf("membership: config: unknown profile %q (want %q or %q)", c.Profile, ProfileLocal, ProfileLAN)
	}
	if _, _, err := splitBind(c.Bind); err != nil {
		return c, err
	}
	if c.Name != "" {
		if err := validName(c.Name); err != nil {
			return c, err
		}
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		return c, fmt.Errorf("membership: config: label of %d bytes exceeds %d", len(c.Label), memberlist.LabelMaxSize)
	}
	if c.EventBuffer < 1 {
		return c, fmt.Errorf("membership: config: event buffer %d (want >= 1)", c.EventBuffer)
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return c, fmt.Errorf("membership: config: seed %q: %v", s, err)
		}
	}
	return c, nil
}

func splitBind(bind string) (string, int, error) {
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return "", 0, fmt.Errorf("membership: config: bind %q: %v", bind, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("membership: config: bind %q: host must be an IP address", bind)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("membership: config: bind %q: bad port", bind)
	}
	return host, int(p), nil
}

func validName(name string) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("membership: config: name of %d bytes exceeds %d", len(name), maxNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("membership: config: name %q contains a space or control character", name)
		}
	}
	return nil
}

// readKeyFile reads a gossip encryption key: standard base64 of 16, 24 or 32
// bytes (whitespace trimmed), or exactly 16, 24 or 32 raw bytes.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("membership: key file: %w", err)
	}
	return parseKey(b, path)
}

func parseKey(b []byte, path string) ([]byte, error) {
	text := bytes.TrimSpace(b)
	if k, err := base64.StdEncoding.DecodeString(string(text)); err == nil && validKeyLen(len(k)) {
		return k, nil
	}
	if validKeyLen(len(b)) {
		return b, nil
	}
	return nil, fmt.Errorf("membership: key file %s: want 16, 24 or 32 bytes, raw or base64-encoded; got %d bytes that are neither", path, len(b))
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// failGrace is how long a member that vanished without announcing its
// leave is withheld before its Fail event, waiting for a late intent.
func failGrace(profile string) time.Duration {
	if profile == ProfileLAN {
		return time.Second
	}
	return 250 * time.Millisecond
}

// broadcastWait is how long Close and SetMeta wait for memberlist's leave
// or update broadcast to finish (normally two or three gossip ticks) before
// they push the state to peers by TCP instead.
func broadcastWait(profile string) time.Duration {
	if profile == ProfileLAN {
		return 2 * time.Second
	}
	return 250 * time.Millisecond
}

// memberlistConfig builds the memberlist preset for a profile.
func memberlistConfig(profile string) *memberlist.Config {
	if profile == ProfileLAN {
		return memberlist.DefaultLANConfig()
	}
	c := memberlist.DefaultLocalConfig()
	c.RetransmitMult = 4
	c.PushPullInterval = 500 * time.Millisecond
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.SuspicionMult = 2
	c.TCPTimeout = 5 * time.Second // 1 s timed out on loaded 2-vCPU machines
	return c
}
