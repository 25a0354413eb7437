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

// Gossip is a member of a fedmo gossip cluster, backed by
// hashicorp/memberlist. It implements Membership. Its methods are safe for
// concurrent use.
type Gossip struct {
	cfg  Config
	log  *zap.Logger
	ml   *memberlist.Memberlist
	name string
	addr string // advertised gossip address, set once after Create

	local atomic.Pointer[localMeta]
	grace time.Duration // how long a pending Fail waits for a late leave intent
	bcast time.Duration // how long Leave and UpdateNode wait for their broadcast

	// lifeMu serializes SetMeta with itself and with Close.
	lifeMu sync.Mutex

	mu      sync.Mutex // guards everything below
	members map[string]Member
	events  chan Event
	closed  bool
	dropped uint64
	refused refusals
	intents map[string]time.Time    // leave intents received, by name@addr
	pending map[string]*pendingFail // members gone without an intent, by name
	leaving bool                    // Close is leaving: our own NotifyLeave is a Leave
	joining bool                    // Start or Join is contacting seeds
	vetoes  []*RefusedError         // NotifyMerge vetoes while joining
	conf    confirmation            // what the current join push/pull showed

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
// errors when none could be reached. A node that refuses the cluster
// itself (see the package documentation, "Join-time checks") leaves no
// trace in it. ctx bounds the join: it is checked between seeds and while
// waiting for confirmation; a single seed contact is bounded by the
// profile's TCP timeout (5 s local, 10 s lan).
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
		pending: make(map[string]*pendingFail),
		grace:   failGrace(cfg.Profile),
		bcast:   broadcastWait(cfg.Profile),
	}
	g.local.Store(&localMeta{meta: cfg.Meta, raw: raw})
	bridge := newLogBridge(cfg.Logger.Named("memberlist"))
	stdlog := log.New(bridge, "", 0)

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
	bridge.l.Store(bridge.l.Load().With(zap.String("node", g.name)))

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

	seeds, err := g.probe(ctx, host, cfg.Seeds, mc, stdlog)
	if err != nil {
		_ = nt.Shutdown()
		return nil, err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = nt.Shutdown()
		return nil, fmt.Errorf("membership: create: %w", err)
	}
	g.ml = ml
	if err := g.join(ctx, seeds); err != nil {
		g.abort(ctx)
		return nil, err
	}
	g.mu.Lock()
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
// coordinator's). Once the meta is set it stays set; SetMeta then waits
// for memberlist's update broadcast (see "Delivery" in the package
// documentation), falls back to pushing the new state to up to three peers
// by TCP, and returns an error only if neither reached anyone (the meta
// then spreads with the next periodic push/pull). ctx bounds the wait
// (DefaultTimeout without a deadline).
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
	err = g.ml.UpdateNode(min(timeoutOf(ctx), g.bcast))
	if err == nil || g.pushPullPeers(ctx) != 0 {
		return nil
	}
	return fmt.Errorf("membership: update meta: %w; no peer took the new state by push/pull either", err)
}

// Close leaves the cluster gracefully, then shuts memberlist down and
// closes the Events channel. Peers see a Leave event. Leaving means: a
// leave intent to every peer (UDP), memberlist's Leave (a broadcast), and,
// if that broadcast has not finished in time, a TCP push/pull of the left
// state to up to three peers (see "Delivery" in the package documentation).
// ctx bounds all of it (DefaultTimeout without a deadline); Close returns an
// error if neither the broadcast nor a push/pull went through while some
// peer was still alive (a last member has nobody to tell), and peers
// then notice the departure by failure detection (still reported as Leave
// where the intent arrived). If ctx is already done, Close skips leaving and
// peers will see a Fail. Close is idempotent and safe to call concurrently;
// later calls return the first call's error.
func (g *Gossip) Close(ctx context.Context) error { return g.close(ctx, true) }

func (g *Gossip) close(ctx context.Context, leave bool) error {
	g.closeOnce.Do(func() {
		g.lifeMu.Lock()
		defer g.lifeMu.Unlock()
		var errs []error
		leave = leave && ctx.Err() == nil
		if leave {
			g.announceLeave()
			// pushPullPeers is -1 when no peer is left to tell (they all left
			// meanwhile): not an error.
			if err := g.ml.Leave(min(timeoutOf(ctx), g.bcast)); err != nil && g.pushPullPeers(ctx) == 0 {
				errs = append(errs, fmt.Errorf("membership: leave: %w; no peer took the left state by push/pull either", err))
			}
		}
		if err := g.ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("membership: shutdown: %w", err))
		}
		g.mu.Lock()
		for name, p := range g.pending {
			p.timer.Stop()
			delete(g.pending, name)
		}
		g.closed = true
		close(g.events)
		g.mu.Unlock()
		g.closeErr = errors.Join(errs...)
		g.log.Debug("gossip member closed", zap.Bool("left", leave), zap.Errors("errors", errs))
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

// emitLocked applies an event to the member map and queues it. Callers
// hold g.mu.
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
	g.queueLocked(e)
}

// queueLocked sends e on the events channel, dropping the oldest queued
// event when the buffer is full. Callers hold g.mu.
func (g *Gossip) queueLocked(e Event) {
	if g.closed {
		return
	}
	select {
	case g.events <- e:
		return
	default:
	}
	// Full. Every send happens under g.mu, so once one element is removed
	// the send succeeds (unless the consumer raced us to it: then too).
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

// pendingFail is a member that disappeared without a leave intent. Its
// Fail event waits for the grace period, in case the intent was overtaken
// by memberlist's dead message (memberlist handles dead messages before
// user messages when both are queued, e.g. on a starved CPU).
type pendingFail struct {
	m     Member
	timer *time.Timer
}

// failLaterLocked removes m from the member map now and queues its Fail
// after the grace period unless a leave intent or a rejoin settles it
// first. Callers hold g.mu.
func (g *Gossip) failLaterLocked(m Member) {
	delete(g.members, m.Name)
	if old := g.pending[m.Name]; old != nil {
		old.timer.Stop()
	}
	p := &pendingFail{m: m}
	p.timer = time.AfterFunc(g.grace, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.pending[m.Name] == p {
			delete(g.pending, m.Name)
			g.queueLocked(Event{Kind: Fail, Member: m})
		}
	})
	g.pending[m.Name] = p
}

// settleLocked queues a pending member's event now, as kind. Callers hold
// g.mu.
func (g *Gossip) settleLocked(name string, kind EventKind) bool {
	p := g.pending[name]
	if p == nil {
		return false
	}
	p.timer.Stop()
	delete(g.pending, name)
	g.queueLocked(Event{Kind: kind, Member: p.m})
	return true
}
