package membership

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// memberlist's goroutines all stop on Shutdown (NetTransport waits for its
// listeners); goleak retries for a while, which covers stream handlers that
// are still closing. No goroutine is ignored.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	fpA = "aaaaaaaaaaaa11111111111111111111111111111111111111111111111111aa"
	fpB = "bbbbbbbbbbbb22222222222222222222222222222222222222222222222222bb"
)

func testMeta(role Role) Meta {
	return Meta{Role: role, GRPC: "127.0.0.1:50051", Protocol: ProtocolVersion, Capacity: 2, Real: -1}
}

// node returns a local-profile config on 127.0.0.1 with an ephemeral port.
// MEMBERSHIP_TEST_LOG=file sends every member's Debug log (memberlist's
// included) to that file.
func node(name string, role Role, seeds ...string) Config {
	return Config{Name: name, Bind: "127.0.0.1:0", Seeds: seeds, Meta: testMeta(role), Profile: ProfileLocal, Logger: testLogger}
}

// testLogs records every member's Debug log (memberlist's included) in
// memory; a failing cluster test prints the failing member's recent entries.
var testLogs *observer.ObservedLogs

var testLogger = func() *zap.Logger {
	if path := os.Getenv("MEMBERSHIP_TEST_LOG"); path != "" {
		c := zap.NewDevelopmentConfig()
		c.OutputPaths, c.ErrorOutputPaths = []string{path}, []string{path}
		l, err := c.Build()
		if err != nil {
			panic(err)
		}
		return l
	}
	core, logs := observer.New(zap.DebugLevel)
	testLogs = logs
	return zap.New(core)
}()

func dumpLog(t *testing.T, node string) {
	t.Helper()
	if testLogs == nil {
		return
	}
	entries := testLogs.FilterField(zap.String("node", node)).All()
	if len(entries) > 20 {
		entries = entries[len(entries)-20:]
	}
	for _, e := range entries {
		t.Logf("  %s %s %s %v", e.Time.Format("15:04:05.000"), e.Level, e.Message, e.ContextMap())
	}
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real memberlist on 127.0.0.1: skipped under -short")
	}
}

// start starts a member and closes it at the end of the test.
func start(t *testing.T, cfg Config) *Gossip {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() { closeNow(t, g) })
	return g
}

func closeNow(t *testing.T, g *Gossip) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.Close(ctx); err != nil {
		t.Errorf("Close(%s): %v", g.LocalName(), err)
		dumpLog(t, g.LocalName())
	}
}

// crash stops g's memberlist without Leave, as a killed process would.
func crash(t *testing.T, g *Gossip) {
	t.Helper()
	if err := g.close(context.Background(), false); err != nil {
		t.Fatalf("crash %s: %v", g.LocalName(), err)
	}
}

// startErr expects Start to fail and returns its error.
func startErr(t *testing.T, cfg Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := Start(ctx, cfg)
	if err == nil {
		closeNow(t, g)
		t.Fatalf("Start(%s) succeeded, want an error", cfg.Name)
	}
	return err
}

// waitFor polls cond until it holds or d elapses.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	for !cond() {
		if time.Since(t0) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(t0)
}

// waitEvent reads g's events until one matches, failing after d.
func waitEvent(t *testing.T, g *Gossip, d time.Duration, kind EventKind, name string) Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-g.Events():
			if !ok {
				t.Fatalf("%s: events closed while waiting for %v %s", g.LocalName(), kind, name)
			}
			if e.Member.Name == name && (e.Kind == kind || e.Kind == Leave || e.Kind == Fail) {
				if e.Kind != kind {
					t.Fatalf("%s: got %v %s, want %v", g.LocalName(), e.Kind, name, kind)
				}
				return e
			}
		case <-timer.C:
			t.Fatalf("%s: no %v event for %s within %v", g.LocalName(), kind, name, d)
		}
	}
}

func names(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func hasMember(g *Gossip, name string) bool {
	for _, m := range g.Members() {
		if m.Name == name {
			return true
		}
	}
	return false
}

// cluster starts a coordinator and n-1 clients that join through it, and
// waits until every member sees all n. It returns the members and the time
// from the first Start until convergence.
func cluster(t *testing.T, n int, edit func(i int, c *Config)) ([]*Gossip, time.Duration) {
	t.Helper()
	t0 := time.Now()
	gs := make([]*Gossip, n)
	for i := range gs {
		role, seeds := Client, []string(nil)
		if i == 0 {
			role = Coordinator
		} else {
			seeds = []string{gs[0].Addr()}
		}
		c := node(fmt.Sprintf("n%d", i), role, seeds...)
		c.Meta.GRPC = fmt.Sprintf("127.0.0.1:%d", 50000+i)
		if edit != nil {
			edit(i, &c)
		}
		gs[i] = start(t, c)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("%d members converge", n), func() bool {
		for _, g := range gs {
			if len(g.Members()) != n {
				return false
			}
		}
		return true
	})
	return gs, time.Since(t0)
}

func TestClusterConverges(t *testing.T) {
	skipShort(t)
	gs, took := cluster(t, 5, nil)
	t.Logf("5 nodes (local profile): all see 5 members %v after the first Start", took)
	want := []string{"n0", "n1", "n2", "n3", "n4"}
	for _, g := range gs {
		ms := g.Members()
		if got := names(ms); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: Members() = %v, want %v", g.LocalName(), got, want)
		}
		for i, m := range ms {
			if m.Meta.GRPC != fmt.Sprintf("127.0.0.1:%d", 50000+i) || m.Addr != gs[i].Addr() {
				t.Errorf("%s sees %v, want gRPC 127.0.0.1:%d at %s", g.LocalName(), m, 50000+i, gs[i].Addr())
			}
		}
	}
	if ms := gs[0].Members(); ms[0].Meta.Role != Coordinator || ms[1].Meta.Role != Client {
		t.Errorf("roles: %v", ms)
	}
	// The coordinator's events: its own join first, then one per client.
	if e := <-gs[0].Events(); e.Kind != Join || e.Member.Name != "n0" {
		t.Errorf("first event %v, want join n0", e)
	}
	for i := 1; i < 5; i++ {
		waitEvent(t, gs[0], time.Second, Join, fmt.Sprintf("n%d", i))
	}
}

func TestStartAddrAndName(t *testing.T) {
	skipShort(t)
	c := node("", Client)
	g := start(t, c)
	host, port, err := net.SplitHostPort(g.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1:<ephemeral>", g.Addr())
	}
	if want := "client-127.0.0.1-" + port + "-"; !strings.HasPrefix(g.LocalName(), want) || len(g.LocalName()) != len(want)+6 {
		t.Errorf("LocalName() = %q, want %s<6 hex>", g.LocalName(), want)
	}
	if ms := g.Members(); len(ms) != 1 || ms[0].Name != g.LocalName() || ms[0].Meta != c.Meta {
		t.Errorf("Members() = %v, want only itself", ms)
	}
	// Seeds equal to the node's own address are skipped.
	if !g.isSelf(g.Addr()) || g.isSelf("127.0.0.1:1") || g.isSelf("localhost:"+port) {
		t.Errorf("isSelf(%s) wrong", g.Addr())
	}
}

func TestLeaveEvent(t *testing.T) {
	skipShort(t)
	gs, _ := cluster(t, 3, nil)
	t0 := time.Now()
	closeNow(t, gs[2])
	for _, g := range gs[:2] {
		e := waitEvent(t, g, time.Second, Leave, "n2")
		if e.Member.Meta.GRPC != "127.0.0.1:50002" {
			t.Errorf("leave event carries %v, want n2's last meta", e.Member)
		}
	}
	t.Logf("graceful leave seen by both peers after %v", time.Since(t0))
	if hasMember(gs[0], "n2") || hasMember(gs[1], "n2") {
		t.Errorf("n2 still listed after leaving")
	}
	if _, ok := <-gs[2].Events(); ok {
		// drain: the closed member's channel must end
		for range gs[2].Events() {
		}
	}
}

func TestFailEvent(t *testing.T) {
	skipShort(t)
	gs, _ := cluster(t, 3, nil)
	t0 := time.Now()
	crash(t, gs[2])
	for _, g := range gs[:2] {
		waitEvent(t, g, 5*time.Second, Fail, "n2")
		t.Logf("%s saw n2 fail after %v", g.LocalName(), time.Since(t0))
	}
	if hasMember(gs[0], "n2") {
		t.Errorf("n2 still listed after failing")
	}
}

func TestSetMetaUpdate(t *testing.T) {
	skipShort(t)
	gs, _ := cluster(t, 3, func(i int, c *Config) { c.Meta.Config = fpA })
	m := gs[1].LocalMeta()
	m.Capacity, m.Real = 7, 42
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := gs[1].SetMeta(ctx, m); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Gossip{gs[0], gs[2]} {
		e := waitEvent(t, g, 2*time.Second, Update, "n1")
		if e.Member.Meta != m {
			t.Errorf("%s: update carries %+v, want %+v", g.LocalName(), e.Member.Meta, m)
		}
	}

	// A fingerprint that differs from the coordinator's is refused locally.
	bad := m
	bad.Config = fpB
	err := gs[1].SetMeta(ctx, bad)
	if !errors.Is(err, ErrRefused) || err.Error() != `membership: refused by coordinator "n0": config fingerprint bbbbbbbbbbbb… differs from the coordinator's aaaaaaaaaaaa…` {
		t.Errorf("SetMeta(other config) = %v", err)
	}
	if gs[1].LocalMeta() != m {
		t.Errorf("refused SetMeta changed the local meta")
	}
}

func TestMetaTooLargeIsAnError(t *testing.T) {
	c := node("big", Client)
	c.Meta.GRPC = strings.Repeat("h", 600) + ".example:1"
	ctx := context.Background()
	if _, err := Start(ctx, c); err == nil || !strings.Contains(err.Error(), "exceeds memberlist's limit of 512") {
		t.Errorf("Start with %d-byte gRPC address: err = %v, want size error", len(c.Meta.GRPC), err)
	}
	if testing.Short() {
		return
	}
	g := start(t, node("small", Client))
	err := g.SetMeta(ctx, c.Meta)
	if err == nil || !strings.Contains(err.Error(), "exceeds memberlist's limit of 512") {
		t.Errorf("SetMeta with a long gRPC address: err = %v, want size error", err)
	}
	if g.LocalMeta().GRPC != "127.0.0.1:50051" {
		t.Errorf("failed SetMeta changed the meta")
	}
}

// TestRefusals covers the join-time checks in both directions. After each
// refusal a good client joins as a barrier, and the refused node must not be
// among the coordinator's members.
func TestRefusals(t *testing.T) {
	skipShort(t)
	tests := []struct {
		name    string
		coord   func(*Config)             // edits the coordinator
		joiner  func(*Config)             // edits the joining process
		viaSeed bool                      // join through a compatible client instead of the coordinator
		want    func(coord string) string // error text; coord is the coordinator's name
	}{{
		name:   "old client joins new coordinator",
		coord:  func(c *Config) { c.Meta.Protocol = 2 },
		joiner: func(c *Config) { c.Meta.Protocol = 1 },
		want: func(co string) string {
			return `membership: refused by coordinator "` + co + `": protocol version 1, want 2`
		},
	}, {
		name:   "new client joins old coordinator",
		coord:  func(c *Config) { c.Meta.Protocol = 1 },
		joiner: func(c *Config) { c.Meta.Protocol = 2 },
		want: func(co string) string {
			return `membership: refused by coordinator "` + co + `": protocol version 2, want 1`
		},
	}, {
		name:   "client with another config",
		coord:  func(c *Config) { c.Meta.Config = fpA },
		joiner: func(c *Config) { c.Meta.Config = fpB },
		want: func(co string) string {
			return `membership: refused by coordinator "` + co + `": config fingerprint bbbbbbbbbbbb… differs from the coordinator's aaaaaaaaaaaa…`
		},
	}, {
		name:    "client with another config joins through a client",
		coord:   func(c *Config) { c.Meta.Config = fpA },
		joiner:  func(c *Config) { c.Meta.Config = fpB },
		viaSeed: true,
		want: func(co string) string {
			return `membership: refused by coordinator "` + co + `": config fingerprint bbbbbbbbbbbb… differs from the coordinator's aaaaaaaaaaaa…`
		},
	}, {
		name:   "coordinator's Accept vetoes the client",
		coord:  func(c *Config) { c.Accept = maxCapacity4 },
		joiner: func(c *Config) { c.Meta.Capacity = 8 },
		want: func(co string) string {
			return `membership: refused by coordinator "` + co + `": not accepted: capacity 8 > 4`
		},
	}, {
		name:   "client's Accept vetoes the coordinator",
		joiner: func(c *Config) { c.Accept = func(m Meta) error { return errors.New("no coordinators today") } },
		want: func(co string) string {
			return `membership: refused by client "bad": coordinator "` + co + `" not accepted: no coordinators today`
		},
	}}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := node(fmt.Sprintf("coord-%d", i), Coordinator)
			if tt.coord != nil {
				tt.coord(&cc)
			}
			co := start(t, cc)
			seed := co.Addr()
			if tt.viaSeed {
				sc := node("seed-client", Client, co.Addr())
				sc.Meta.Protocol, sc.Meta.Config = cc.Meta.Protocol, cc.Meta.Config
				seed = start(t, sc).Addr()
			}
			jc := node("bad", Client, seed)
			jc.Meta.Protocol = cc.Meta.Protocol
			tt.joiner(&jc)
			err := startErr(t, jc)
			if !errors.Is(err, ErrRefused) || err.Error() != tt.want(cc.Name) {
				t.Errorf("Start error:\n got %v\nwant %s", err, tt.want(cc.Name))
			}
			good := node("good", Client, co.Addr())
			good.Meta.Protocol, good.Meta.Config = cc.Meta.Protocol, cc.Meta.Config
			start(t, good)
			waitFor(t, 5*time.Second, "coordinator sees the good client", func() bool { return hasMember(co, "good") })
			if hasMember(co, "bad") {
				t.Errorf("refused client is a member: %v", co.Members())
			}
			for len(co.Events()) > 0 {
				if e := <-co.Events(); e.Member.Name == "bad" {
					t.Errorf("coordinator got event %v for the refused client", e)
				}
			}
		})
	}
}

func maxCapacity4(m Meta) error {
	if m.Capacity > 4 {
		return fmt.Errorf("capacity %d > 4", m.Capacity)
	}
	return nil
}

func TestCoordinatorWithOtherConfigIsRefused(t *testing.T) {
	skipShort(t)
	c1 := node("c1", Client)
	c1.Meta.Config = fpA
	g1 := start(t, c1)
	c2 := node("c2", Client, g1.Addr())
	c2.Meta.Config = fpB // clients do not compare fingerprints with each other
	start(t, c2)

	co := node("coord", Coordinator, g1.Addr())
	co.Meta.Config = fpB
	err := startErr(t, co)
	want := `membership: refused by client "c1": the coordinator's config fingerprint bbbbbbbbbbbb… differs from this client's aaaaaaaaaaaa…`
	if !errors.Is(err, ErrRefused) || err.Error() != want {
		t.Errorf("Start error:\n got %v\nwant %s", err, want)
	}

	// A coordinator whose fingerprint is not known yet is accepted, and a
	// client with an unknown fingerprint is accepted by a coordinator.
	co.Meta.Config, co.Name = "", "coord-unknown"
	start(t, co)
}

func TestRefusalIsLoggedOnce(t *testing.T) {
	skipShort(t)
	core, logs := observer.New(zap.WarnLevel)
	cc := node("coord", Coordinator)
	cc.Logger = zap.New(core)
	cc.Accept = maxCapacity4
	co := start(t, cc)
	jc := node("big", Client, co.Addr())
	jc.Meta.Capacity = 9
	startErr(t, jc)
	got := logs.FilterMessage("membership: refusing peer").All()
	if len(got) != 1 || got[0].ContextMap()["reason"] != "not accepted: capacity 9 > 4" {
		t.Errorf("coordinator logged %v, want one refusal with the reason", got)
	}

	// A joiner that refuses the cluster itself leaves no trace: its probe
	// is never merged, so the coordinator neither logs nor lists it.
	jc = node("old", Client, co.Addr())
	jc.Meta.Protocol = 9
	startErr(t, jc)
	if n := logs.FilterField(zap.String("peer", "old")).Len(); n != 0 {
		t.Errorf("coordinator logged %d entries about a probe", n)
	}
}

func TestDuplicateNameIsRefused(t *testing.T) {
	skipShort(t)
	co := start(t, node("coord", Coordinator))
	dup := start(t, node("dup", Client, co.Addr()))
	err := startErr(t, node("dup", Client, co.Addr()))
	want := `membership: refused: name "dup" is already in use by the member at ` + dup.Addr()
	if !errors.Is(err, ErrRefused) || err.Error() != want {
		t.Errorf("Start error:\n got %v\nwant %s", err, want)
	}
	for _, m := range co.Members() {
		if m.Name == "dup" && m.Addr != dup.Addr() {
			t.Errorf("dup moved to %s", m.Addr)
		}
	}

	// A crashed member's name stays taken while the cluster remembers it.
	crashed := start(t, node("crashed", Client, co.Addr()))
	crash(t, crashed)
	waitEvent(t, co, 5*time.Second, Fail, "crashed")
	err = startErr(t, node("crashed", Client, co.Addr()))
	want = `membership: refused: name "crashed" is held by a failed member at ` + crashed.Addr() + ` until the cluster forgets it`
	if !errors.Is(err, ErrRefused) || err.Error() != want {
		t.Errorf("Start error:\n got %v\nwant %s", err, want)
	}

	// After a graceful leave the name is free again.
	closeNow(t, dup)
	waitEvent(t, co, 2*time.Second, Leave, "dup")
	again := start(t, node("dup", Client, co.Addr()))
	waitFor(t, 2*time.Second, "dup rejoins", func() bool {
		for _, m := range co.Members() {
			if m.Name == "dup" && m.Addr == again.Addr() {
				return true
			}
		}
		return false
	})
}

func TestNoSeedReachable(t *testing.T) {
	skipShort(t)
	var dead []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead = append(dead, l.Addr().String())
		l.Close()
	}
	err := startErr(t, node("lonely", Client, dead...))
	msg := err.Error()
	if errors.Is(err, ErrRefused) || !strings.HasPrefix(msg, "membership: join: no seed reachable ("+dead[0]+", "+dead[1]+"): ") ||
		!strings.Contains(msg, "connection refused") {
		t.Errorf("Start error = %v, want both seeds named with their errors", err)
	}
}

func writeKey(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEncryption(t *testing.T) {
	skipShort(t)
	key1 := writeKey(t, "k1", []byte(base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))+"\n"))
	key2 := writeKey(t, "k2", []byte("fedcba9876543210")) // 16 raw bytes
	gs, _ := cluster(t, 3, func(i int, c *Config) { c.KeyFile = key1; c.Label = "fedmo-test" })

	tests := []struct {
		name, key, label, want string
	}{
		{"no key", "", "fedmo-test", "remote state is encrypted and encryption is not configured"},
		{"other key", key2, "fedmo-test", "no installed keys could decrypt the message"},
		{"other label", key1, "other", "EOF (an EOF here usually means a different gossip label or encryption key on the seed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := node("intruder", Client, gs[0].Addr())
			c.KeyFile, c.Label = tt.key, tt.label
			err := startErr(t, c)
			if errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// A key on the joiner only is refused too.
	plain := start(t, node("plain", Coordinator))
	c := node("keyed", Client, plain.Addr())
	c.KeyFile = key2
	if err := startErr(t, c); !strings.Contains(err.Error(), "encryption is configured but remote state is not encrypted") {
		t.Errorf("keyed joiner, plain seed: %v", err)
	}
	if hasMember(gs[0], "intruder") || hasMember(plain, "keyed") {
		t.Errorf("a node without the right key became a member")
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	skipShort(t)
	g, err := Start(context.Background(), node("x", Client))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- g.Close(context.Background()) }()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if err := g.Close(context.Background()); err != nil {
		t.Errorf("third Close: %v", err)
	}
	n := 0
	for range g.Events() { // closed: terminates
		n++
	}
	if n == 0 {
		t.Errorf("no events before close (want at least its own join)")
	}
	if g.Members() != nil {
		t.Errorf("Members after Close = %v, want nil", g.Members())
	}
	if err := g.SetMeta(context.Background(), testMeta(Client)); !errors.Is(err, ErrClosed) {
		t.Errorf("SetMeta after Close = %v, want ErrClosed", err)
	}
}

func TestEventsDropOldest(t *testing.T) {
	g := &Gossip{log: zap.NewNop(), members: map[string]Member{}, events: make(chan Event, 2)}
	g.mu.Lock()
	for i := range 5 {
		g.emitLocked(Event{Kind: Join, Member: Member{Name: fmt.Sprint(i)}})
	}
	g.emitLocked(Event{Kind: Fail, Member: Member{Name: "0"}})
	g.mu.Unlock()
	if g.Dropped() != 4 {
		t.Errorf("Dropped() = %d, want 4", g.Dropped())
	}
	if a, b := <-g.events, <-g.events; a.String() != "join 4" || b.String() != "fail 0" {
		t.Errorf("kept %v, %v; want the newest two", a, b)
	}
	if got := names(g.Members()); strings.Join(got, ",") != "1,2,3,4" {
		t.Errorf("Members() = %v: the member map must not lose changes", got)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := node("n", Client)
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"profile", func(c *Config) { c.Profile = "wan" }, `unknown profile "wan"`},
		{"bind", func(c *Config) { c.Bind = "localhost:0" }, "host must be an IP address"},
		{"label", func(c *Config) { c.Label = strings.Repeat("x", 256) }, "label of 256 bytes exceeds 255"},
		{"name", func(c *Config) { c.Name = "a b" }, "space or control character"},
		{"seed", func(c *Config) { c.Seeds = []string{"127.0.0.1"} }, `seed "127.0.0.1"`},
		{"meta", func(c *Config) { c.Meta.Capacity = 0 }, "capacity 0 out of range"},
		{"key", func(c *Config) { c.KeyFile = filepath.Join(t.TempDir(), "missing") }, "key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			_, err := Start(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start: err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	raw32 := []byte("0123456789abcdef0123456789abcdef")
	tests := []struct {
		name string
		in   []byte
		n    int // key length, 0 = error
	}{
		{"base64 16", []byte(base64.StdEncoding.EncodeToString(raw32[:16]) + "\n"), 16},
		{"base64 24", []byte(base64.StdEncoding.EncodeToString(raw32[:24])), 24},
		{"base64 32", []byte("  " + base64.StdEncoding.EncodeToString(raw32) + "\r\n"), 32},
		{"raw 16", []byte{0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0}, 16},
		{"raw 32 not base64", append([]byte{0xff}, raw32[1:]...), 32},
		{"base64 of 20", []byte(base64.StdEncoding.EncodeToString(raw32[:20])), 0},
		{"raw 20", raw32[:20], 0},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		k, err := parseKey(tt.in, "k")
		if tt.n == 0 {
			if err == nil {
				t.Errorf("%s: parseKey succeeded with %d bytes, want an error", tt.name, len(k))
			}
			continue
		}
		if err != nil || len(k) != tt.n {
			t.Errorf("%s: parseKey = %d bytes, %v; want %d bytes", tt.name, len(k), err, tt.n)
		}
	}
}

// TestLeaveFallsBackToPushPull forces memberlist's leave broadcast to time
// out (as when memberlist#263 drops it): the push/pull fallback must still
// deliver a Leave to every peer.
func TestLeaveFallsBackToPushPull(t *testing.T) {
	skipShort(t)
	gs, _ := cluster(t, 3, nil)
	gs[2].bcast = time.Nanosecond
	t0 := time.Now()
	closeNow(t, gs[2])
	// Without the push/pull the peers would notice only by failure
	// detection, after about a second.
	for _, g := range gs[:2] {
		waitEvent(t, g, 500*time.Millisecond, Leave, "n2")
	}
	t.Logf("leave seen by both peers after %v", time.Since(t0))
}

// TestSetMetaFallsBackToPushPull: the same for a meta update.
func TestSetMetaFallsBackToPushPull(t *testing.T) {
	skipShort(t)
	gs, _ := cluster(t, 3, nil)
	gs[1].bcast = time.Nanosecond
	m := gs[1].LocalMeta()
	m.Capacity = 5
	if err := gs[1].SetMeta(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Gossip{gs[0], gs[2]} {
		// Without the push/pull it would wait for the periodic one (500 ms).
		if e := waitEvent(t, g, 300*time.Millisecond, Update, "n1"); e.Member.Meta.Capacity != 5 {
			t.Errorf("%s: update %v", g.LocalName(), e.Member)
		}
	}
}

// TestJoinMergesClusters: a member of one cluster joins another through
// Join, as a client does when its coordinator restarts as a new cluster.
func TestJoinMergesClusters(t *testing.T) {
	skipShort(t)
	a := start(t, node("a-coord", Coordinator))
	c := start(t, node("a-client", Client, a.Addr()))
	b := start(t, node("b-coord", Coordinator))
	if err := c.Join(context.Background(), []string{b.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the clusters merge", func() bool {
		return len(a.Members()) == 3 && len(b.Members()) == 3 && len(c.Members()) == 3
	})

	// Join applies the same checks as Start.
	o := node("other", Coordinator)
	o.Meta.Protocol = ProtocolVersion + 1
	other := start(t, o)
	err := c.Join(context.Background(), []string{other.Addr()})
	if want := fmt.Sprintf("protocol version %d, want %d", ProtocolVersion, ProtocolVersion+1); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
		t.Errorf("Join(incompatible) = %v", err)
	}
	closeNow(t, c)
	if err := c.Join(context.Background(), []string{b.Addr()}); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Close = %v, want ErrClosed", err)
	}
}

// TestLateLeaveIntent: memberlist may deliver a member's dead message
// before its leave intent; within the grace period the intent still turns
// the departure into a Leave, and after it a departure is a Fail.
func TestLateLeaveIntent(t *testing.T) {
	g := &Gossip{log: zap.NewNop(), name: "me", members: map[string]Member{}, events: make(chan Event, 8),
		intents: map[string]time.Time{}, pending: map[string]*pendingFail{}, grace: time.Hour}
	d := &delegate{g}
	meta, _ := testMeta(Client).Encode()
	n := &memberlist.Node{Name: "x", Addr: net.IPv4(127, 0, 0, 1), Port: 7946, Meta: meta}
	d.NotifyJoin(n)
	d.NotifyLeave(n)
	if hasMember(g, "x") {
		t.Errorf("a departed member is still listed")
	}
	d.NotifyMsg([]byte(leaveIntent + "x"))
	if e1, e2 := <-g.events, <-g.events; e1.Kind != Join || e2.Kind != Leave {
		t.Errorf("events %v, %v; want join, leave", e1, e2)
	}

	// No intent: Fail after the grace period; a rejoin settles it at once.
	g.grace = time.Millisecond
	d.NotifyJoin(n)
	d.NotifyLeave(n)
	if e1, e2 := <-g.events, <-g.events; e1.Kind != Join || e2.Kind != Fail {
		t.Errorf("events %v, %v; want join, fail", e1, e2)
	}
	g.grace = time.Hour
	d.NotifyJoin(n)
	d.NotifyLeave(n)
	d.NotifyJoin(n)
	if e1, e2, e3 := <-g.events, <-g.events, <-g.events; e1.Kind != Join || e2.Kind != Fail || e3.Kind != Join {
		t.Errorf("events %v, %v, %v; want join, fail, join", e1, e2, e3)
	}
	// An intent that arrives first makes the next departure a Leave.
	d.NotifyMsg([]byte(leaveIntent + "x"))
	d.NotifyLeave(n)
	if e := <-g.events; e.Kind != Leave {
		t.Errorf("event %v, want leave", e)
	}
}

func TestRefusalTable(t *testing.T) {
	t0 := time.Now()
	tab := refusals{}
	r := refusal{Name: "c", Addr: "127.0.0.1:1", By: "coord", Role: Coordinator, Reason: "protocol version 2, want 1"}
	if !tab.add(r, t0) || tab.add(r, t0.Add(time.Second)) {
		t.Errorf("add: want new once, then not new")
	}
	buf := tab.encode(t0.Add(3 * time.Second))
	got, age := findRefusal(buf, "c", "127.0.0.1:1")
	if got == nil || got.Error() != `membership: refused by coordinator "coord": protocol version 2, want 1` || age != 2*time.Second {
		t.Errorf("findRefusal = %v, %v", got, age)
	}
	if got, _ := findRefusal(buf, "c", "127.0.0.1:2"); got != nil {
		t.Errorf("found a refusal for another address")
	}
	for i := range refusalMax + 10 {
		tab.add(refusal{Name: fmt.Sprint(i), Reason: "x"}, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if len(tab) != refusalMax {
		t.Errorf("table holds %d entries, want %d", len(tab), refusalMax)
	}
	tab.expire(t0.Add(2 * refusalTTL))
	if len(tab) != 0 {
		t.Errorf("entries outlive their TTL")
	}
	for _, junk := range [][]byte{nil, []byte("{"), []byte(`{"v":2}`), []byte(`{"v":1,"refused":[{"n":"c","a":"127.0.0.1:1","age":-5}]}`)} {
		if got, _ := findRefusal(junk, "c", "127.0.0.1:1"); got != nil {
			t.Errorf("findRefusal(%q) = %v", junk, got)
		}
	}
}
