package membership

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// ErrClosed is returned by SetMeta after Close.
var ErrClosed = errors.New("membership: closed")

// confirmTimeout bounds how long Start waits for a seed to list the new node
// (normally one extra push/pull, about a millisecond on loopback).
const confirmTimeout = 5 * time.Second

// Gossip is a member of a fedmo gossip cluster, backed by
// hashicorp/memberlist. It implements Membership. Its methods are safe for
// concurrent use.
type Gossip struct {
	cfg  Config
	log  *zap.Logger
	ml   *memberlist.Memberlist
	name string
	addr string // advertised gossip address, set once after Create

	local   atomic.Pointer[localMeta]
	probing atomic.Bool // Start's probe phase: NodeMeta returns probeMeta

	// lifeMu serializes SetMeta with itself and with Close.
	lifeMu sync.Mutex

	mu      sync.Mutex // guards everything below
	members map[string]Member
	events  chan Event
	closed  bool
	dropped uint64
	refused refusals
	intents map[string]time.Time // leave intents received, by name@addr
	leaving bool                 // Close is leaving: our own NotifyLeave is a Leave
	joining bool                 // Start is contacting seeds
	vetoes  []*RefusedError      // NotifyMerge vetoes while joining
	conf    confirmation         // what the current join push/pull showed

	closeOnce sync.Once
	closeErr  error
}

type localMeta struct {
	meta Meta
	raw  []byte
}

// confirmation is what the joiner learned from one push/pull with a seed.
type confirmation struct {
	listed  bool          // the seed's state lists this node alive at its address
	refused *RefusedError // the seed's refusal table names this node
	age     time.Duration // how long ago the seed recorded that refusal
}

var _ Membership = (*Gossip)(nil)

// Start creates a memberlist member, joins the cluster through cfg.Seeds
// (unless there are none) and returns once this node is a member: at least
// one seed was reached, none refused this node, and every reached seed lists
// it. It returns a *RefusedError (errors.Is(err, ErrRefused)) when this node
// and the cluster are incompatible, and an error naming the seeds and their
// errors when none could be reached. ctx bounds the join: it is checked
// between seeds and while waiting for confirmation; a single seed contact is
// bounded by the profile's TCP timeout (local 1 s, lan 10 s).
func Start(ctx context.Context, cfg Config) (*Gossip, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var key []byte
	if cfg.KeyFile != "" {
		if key, err = readKeyFile(cfg.KeyFile); err != nil {
			return nil, err
		}
	}
	raw, _ := cfg.Meta.Encode() // validated by withDefaults
	host, port, _ := splitBind(cfg.Bind)

	g := &Gossip{
		cfg:     cfg,
		log:     cfg.Logger,
		members: make(map[string]Member),
		events:  make(chan Event, cfg.EventBuffer),
		refused: make(refusals),
		intents: make(map[string]time.Time),
		joining: len(cfg.Seeds) > 0,
	}
	g.local.Store(&localMeta{meta: cfg.Meta, raw: raw})
	g.probing.Store(len(cfg.Seeds) > 0)
	stdlog := log.New(logBridge{cfg.Logger.Named("memberlist")}, "", 0)

	nt, err := newTransport(host, port, stdlog)
	if err != nil {
		return nil, err
	}
	ip, aport, err := nt.FinalAdvertiseAddr("", 0)
	if err != nil {
		_ = nt.Shutdown()
		return nil, fmt.Errorf("membership: advertise address: %w", err)
	}
	g.addr = net.JoinHostPort(ip.String(), strconv.Itoa(aport))
	g.name = cfg.Name
	if g.name == "" {
		g.name = fmt.Sprintf("%s-%s-%d-%s", cfg.Meta.Role, ip, aport, randomSuffix())
	}
	g.log = g.log.With(zap.String("node", g.name))

	mc := memberlistConfig(cfg.Profile)
	mc.Name = g.name
	mc.BindAddr = host
	mc.BindPort = aport
	mc.Transport = nt
	mc.Logger = stdlog
	mc.SecretKey = key
	mc.Label = cfg.Label
	d := &delegate{g}
	mc.Delegate, mc.Events, mc.Alive, mc.Merge, mc.Conflict = d, d, d, d, d

	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = nt.Shutdown()
		return nil, fmt.Errorf("membership: create: %w", err)
	}
	g.ml = ml

	if err := g.join(ctx, cfg.Seeds); err != nil {
		g.abort(ctx)
		return nil, err
	}
	g.mu.Lock()
	g.joining, g.vetoes = false, nil
	n := len(g.members)
	g.mu.Unlock()
	g.log.Info("gossip member started", zap.String("addr", g.addr), zap.String("profile", cfg.Profile),
		zap.Int("members", n), zap.Bool("encrypted", key != nil))
	return g, nil
}

// newTransport binds memberlist's UDP+TCP transport. With port 0 the kernel
// picks the TCP port and UDP must get the same one, which can collide; like
// memberlist itself, retry a few times.
func newTransport(host string, port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{host}, BindPort: port, Logger: logger,
		})
		if err == nil {
			return nt, nil
		}
	}
	return nil, fmt.Errorf("membership: bind %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
}

func randomSuffix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// join runs in two phases. First it probes every seed with a push/pull in
// which this node advertises probeMeta: the seed answers with its cluster
// state and refuses to merge the probe, silently, so a probe leaves no trace
// in the cluster. This node checks itself against that state (protocol,
// config fingerprint, name, its own Accept) and refuses to merge too. Only
// when a seed was reachable and nothing was vetoed does it advertise its
// real meta and join for real, then confirm with each seed that the seed
// lists it (or learn the seed's reason for refusing it). A refusal by any
// seed is final.
func (g *Gossip) join(ctx context.Context, seeds []string) error {
	var tried, reachable, failures []string
	for _, s := range seeds {
		if g.isSelf(s) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("membership: join: %w", err)
		}
		tried = append(tried, s)
		_, err := g.ml.Join([]string{s})
		if err == nil || strings.Contains(err.Error(), errProbeOK.Error()) {
			reachable = append(reachable, s)
			continue
		}
		if v := g.takeVeto(err); v != nil {
			return v
		}
		failures = append(failures, joinErrText(err))
	}
	if len(tried) == 0 {
		g.probing.Store(false)
		return g.ml.UpdateNode(time.Second) // a new cluster; nobody to tell
	}
	if len(reachable) == 0 {
		msg := strings.Join(failures, "; ")
		if strings.Contains(msg, "EOF") {
			msg += " (an EOF here usually means a different gossip label or encryption key on the seed)"
		}
		return fmt.Errorf("membership: join: no seed reachable (%s): %s", strings.Join(tried, ", "), msg)
	}

	g.probing.Store(false)
	if err := g.ml.UpdateNode(time.Second); err != nil { // nobody knows us yet: returns at once
		return fmt.Errorf("membership: join: %w", err)
	}
	for _, s := range reachable {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("membership: join: %w", err)
		}
		t0 := time.Now()
		g.resetConfirmation()
		if _, err := g.ml.Join([]string{s}); err != nil {
			if v := g.takeVeto(err); v != nil {
				return v
			}
			return fmt.Errorf("membership: join %s: %s", s, joinErrText(err))
		}
		if err := g.confirm(ctx, s, t0); err != nil {
			return err
		}
	}
	return nil
}

// confirm repeats the push/pull with a seed that accepted this node's join
// until the seed lists this node or names a refusal younger than the join
// (t0). The seed merges the joiner's state only after answering, so the
// first answer does not list it yet.
func (g *Gossip) confirm(ctx context.Context, seed string, t0 time.Time) error {
	deadline := time.Now().Add(confirmTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	wait := time.Millisecond
	for {
		g.mu.Lock()
		c := g.conf
		g.mu.Unlock()
		switch {
		case c.listed:
			return nil
		case c.refused != nil && c.age <= time.Since(t0)+time.Millisecond:
			return c.refused
		case !time.Now().Before(deadline):
			return fmt.Errorf("membership: join %s: the seed did not list this node within %v (see the seed's log)",
				seed, time.Since(t0).Round(time.Millisecond))
		}
		t := time.NewTimer(min(wait, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("membership: join %s: %w", seed, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
		g.resetConfirmation()
		if _, err := g.ml.Join([]string{seed}); err != nil {
			if v := g.takeVeto(err); v != nil {
				return v
			}
			return fmt.Errorf("membership: join %s: %s", seed, joinErrText(err))
		}
	}
}

func (g *Gossip) resetConfirmation() {
	g.mu.Lock()
	g.conf = confirmation{}
	g.mu.Unlock()
}

// takeVeto returns the veto of this node's NotifyMerge whose text memberlist
// embedded in a Join error (memberlist formats it with %v, so the error
// itself does not survive).
func (g *Gossip) takeVeto(err error) *RefusedError {
	text := err.Error()
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := len(g.vetoes) - 1; i >= 0; i-- {
		if strings.Contains(text, g.vetoes[i].Error()) {
			return g.vetoes[i]
		}
	}
	return nil
}

// joinErrText flattens memberlist's multierror ("1 error occurred: ...").
func joinErrText(err error) string {
	if w, ok := err.(interface{ WrappedErrors() []error }); ok {
		var parts []string
		for _, e := range w.WrappedErrors() {
			parts = append(parts, e.Error())
		}
		if len(parts) > 0 {
			return strings.Join(parts, "; ")
		}
	}
	return err.Error()
}

func (g *Gossip) isSelf(seed string) bool {
	h, p, err := net.SplitHostPort(seed)
	if err != nil {
		return false
	}
	sh, sp, _ := net.SplitHostPort(g.addr)
	if p != sp {
		return false
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.Equal(net.ParseIP(sh))
}

// abort undoes a failed Start: leave (a seed may have admitted this node)
// and shut down.
func (g *Gossip) abort(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = g.close(ctx, true)
}

// Addr returns the advertised gossip address host:port (the actual port when
// Bind asked for port 0). Give it to other processes as a seed.
func (g *Gossip) Addr() string { return g.addr }

// LocalName returns this node's name.
func (g *Gossip) LocalName() string { return g.name }

// LocalMeta returns the Meta this node currently advertises.
func (g *Gossip) LocalMeta() Meta { return g.local.Load().meta }

// Members returns the live members (alive or suspect), this node included,
// sorted by name. After Close it returns nil.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	out := make([]Member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return nil
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Events returns the channel of membership changes, this node's own
// included (its Join comes first). It never blocks memberlist: when the
// buffer (Config.EventBuffer) is full the oldest event is dropped and
// counted (see Dropped), so a consumer that fell behind should resync from
// Members. Events and Members change together, under one lock: after
// receiving an event, Members reflects at least that change. The channel
// is closed by Close.
func (g *Gossip) Events() <-chan Event { return g.events }

// Dropped returns how many events were dropped because the Events buffer
// was full.
func (g *Gossip) Dropped() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dropped
}

// SetMeta changes what this node advertises and broadcasts it (memberlist
// UpdateNode); peers receive an Update event. It fails without changing
// anything if m is invalid or too large, or if a current member would
// refuse it (a *RefusedError, e.g. a config fingerprint that differs from a
// coordinator's). The broadcast waits up to ctx's deadline (DefaultTimeout
// without one); on that timeout the new meta is still in effect and spreads
// with later gossip.
func (g *Gossip) SetMeta(ctx context.Context, m Meta) error {
	raw, err := m.Encode()
	if err != nil {
		return err
	}
	g.lifeMu.Lock()
	defer g.lifeMu.Unlock()
	g.mu.Lock()
	closed := g.closed
	var peers []Member
	for _, p := range g.members {
		if p.Name != g.name {
			peers = append(peers, p)
		}
	}
	g.mu.Unlock()
	if closed {
		return ErrClosed
	}
	slices.SortFunc(peers, byRoleName)
	for _, p := range peers {
		if r := incompatible(m, p.Meta); r != "" {
			return &RefusedError{By: p.Name, Role: p.Meta.Role, Reason: r}
		}
	}
	g.local.Store(&localMeta{meta: m, raw: raw})
	if err := g.ml.UpdateNode(timeoutOf(ctx)); err != nil {
		return fmt.Errorf("membership: update meta: %w", err)
	}
	return nil
}

// Close leaves the cluster (memberlist Leave, waiting up to ctx's deadline,
// DefaultTimeout without one, for the leave to be broadcast) and then shuts
// memberlist down and closes the Events channel. Peers see a Leave event. If
// ctx is already done, Close skips Leave and peers will see a Fail. It is
// idempotent and safe to call concurrently; later calls return the first
// call's error.
func (g *Gossip) Close(ctx context.Context) error { return g.close(ctx, true) }

func (g *Gossip) close(ctx context.Context, leave bool) error {
	g.closeOnce.Do(func() {
		g.lifeMu.Lock()
		defer g.lifeMu.Unlock()
		var errs []error
		if leave && ctx.Err() == nil {
			g.announceLeave()
			if err := g.ml.Leave(timeoutOf(ctx)); err != nil {
				errs = append(errs, fmt.Errorf("membership: leave: %w", err))
			}
		}
		if err := g.ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("membership: shutdown: %w", err))
		}
		g.mu.Lock()
		g.closed = true
		close(g.events)
		g.mu.Unlock()
		g.closeErr = errors.Join(errs...)
		g.log.Debug("gossip member closed", zap.Bool("left", leave && ctx.Err() == nil))
	})
	return g.closeErr
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return DefaultTimeout
}

// byRoleName orders coordinators first, then by name.
func byRoleName(a, b Member) int {
	ac, bc := a.Meta.Role == Coordinator, b.Meta.Role == Coordinator
	if ac != bc {
		if ac {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}

// emit records an event in the member map and queues it, dropping the
// oldest queued event when the buffer is full. Callers hold g.mu.
func (g *Gossip) emitLocked(e Event) {
	if g.closed {
		return
	}
	switch e.Kind {
	case Join, Update:
		g.members[e.Member.Name] = e.Member
	case Leave, Fail:
		delete(g.members, e.Member.Name)
	}
	select {
	case g.events <- e:
		return
	default:
	}
	// Full: memberlist calls event delegates one at a time and every send
	// happens under g.mu, so after removing one element the send succeeds.
	select {
	case <-g.events:
		g.dropped++
	default:
	}
	select {
	case g.events <- e:
	default:
		g.dropped++
	}
	if g.dropped&(g.dropped-1) == 0 { // log at 1, 2, 4, 8, ... drops
		g.log.Warn("membership events dropped: consumer is slow; resync from Members", zap.Uint64("dropped", g.dropped))
	}
}
