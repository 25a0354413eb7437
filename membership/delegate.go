package membership

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// probeMeta is the node meta a starting node advertises while it probes its
// seeds (format byte 0, which DecodeMeta never accepts). Members refuse to
// merge a probe, silently: it is not a member yet.
var probeMeta = []byte{0}

// errProbeOK is what the joiner's NotifyMerge returns when a probe found the
// seed's cluster acceptable; memberlist passes its text on in Join's error.
var errProbeOK = errors.New("membership: probe ok")

// leaveIntent prefixes the user message a member sends to every peer just
// before memberlist's Leave, so that peers can tell Leave from Fail:
// memberlist v0.7.0 passes NotifyLeave a Node whose State is always
// StateAlive (hashicorp/memberlist#293), whether the node left or died.
const leaveIntent = "fedmo/membership/leave\x00"

// Bounds of the leave-intent table.
const (
	intentTTL = time.Minute
	intentMax = 1024
)

// delegate receives memberlist's callbacks. memberlist calls several of them
// while holding its node lock (NotifyAlive, NotifyJoin/Leave/Update), so
// they must not call back into memberlist and must not block: they only
// read atomics, take g.mu briefly and do non-blocking channel sends. It is
// a separate type so that Gossip's method set stays the public API.
type delegate struct{ g *Gossip }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
	_ memberlist.MergeDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
)

// NodeMeta returns the encoded local Meta (Encode guaranteed it fits).
func (d *delegate) NodeMeta(limit int) []byte {
	raw := d.g.local.Load().raw
	if len(raw) > limit { // cannot happen (MetaMaxSize == limit); never let memberlist panic
		return nil
	}
	return raw
}

// NotifyMsg receives leave intents; the slice is memberlist's, so it is
// only read here.
func (d *delegate) NotifyMsg(b []byte) {
	if name, ok := strings.CutPrefix(string(b), leaveIntent); ok && len(name) <= maxNameLen {
		d.g.recordIntent(name)
	}
}

func (d *delegate) GetBroadcasts(_, _ int) [][]byte   { return nil }
func (d *delegate) LocalState(join bool) []byte       { return d.g.localState(join) }
func (d *delegate) MergeRemoteState(b []byte, j bool) { d.g.mergeRemoteState(b, j) }

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.g.nodeEvent(Join, n) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.g.nodeEvent(Update, n) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.g.nodeEvent(Fail, n) } // Fail or Leave: see nodeEvent

// NotifyAlive vets every alive message (joins, meta updates, and each
// periodic push/pull of state), so judge must be cheap.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	if r := d.g.judge(n.Name, nodeAddr(n), n.Meta); r != nil {
		return fmt.Errorf("%s", r.Reason)
	}
	return nil
}

// NotifyMerge vets a join push/pull: on the seed side peers is the joiner's
// state, on the joiner side (during Start) it is the seed's state.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	return d.g.vetMerge(peers)
}

func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.g.log.Warn("membership: two nodes claim one name; the newcomer is ignored",
		zap.String("name", existing.Name), zap.String("existing", nodeAddr(existing)), zap.String("other", nodeAddr(other)))
}

func nodeAddr(n *memberlist.Node) string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// nodeEvent turns a memberlist notification into an Event. kind Fail stands
// for NotifyLeave: it becomes Leave when the member announced its leave (or
// is this node, closing); otherwise the member is removed from the map at
// once and its Fail is queued after the grace period (failLaterLocked). A
// Join or Update of a member not listed (this node after its probe) is a
// Join.
func (g *Gossip) nodeEvent(kind EventKind, n *memberlist.Node) {
	if bytes.Equal(n.Meta, probeMeta) && kind != Fail {
		return // this node (or a peer) still probing: not a member
	}
	m, err := DecodeMeta(n.Meta)
	if err != nil && kind != Fail {
		// NotifyAlive refuses such nodes, so this is not expected.
		g.log.Warn("membership: ignoring member with unreadable meta", zap.String("peer", n.Name), zap.Error(err))
		return
	}
	addr := nodeAddr(n)
	e := Event{Kind: kind, Member: Member{Name: n.Name, Addr: addr, Meta: m}}
	key := n.Name + "@" + addr
	g.mu.Lock()
	old, listed := g.members[n.Name]
	switch {
	case kind == Fail && !listed:
		g.mu.Unlock()
		return // never admitted
	case kind == Fail:
		e.Member = old
		_, announced := g.intents[key]
		delete(g.intents, key)
		if announced || (n.Name == g.name && g.leaving) {
			e.Kind = Leave
			g.emitLocked(e)
		} else {
			g.failLaterLocked(e.Member)
		}
	default: // Join or Update
		if !listed {
			e.Kind = Join
			delete(g.intents, key)
			g.settleLocked(n.Name, Fail) // it failed before this rejoin
		}
		g.emitLocked(e)
	}
	g.mu.Unlock()
	if e.Kind != Update {
		g.log.Debug("membership event", zap.Stringer("kind", e.Kind), zap.String("peer", n.Name), zap.String("addr", addr))
	}
}

// recordIntent notes that a peer announced its leave. The intent is keyed
// by name@addr of the listed member, so a forged or late intent cannot
// outlive the member's next Join.
func (g *Gossip) recordIntent(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.settleLocked(name, Leave) {
		return // the intent came after memberlist's dead message
	}
	m, ok := g.members[name]
	if !ok {
		return
	}
	now := time.Now()
	if len(g.intents) >= intentMax {
		for k, t := range g.intents {
			if now.Sub(t) > intentTTL {
				delete(g.intents, k)
			}
		}
		if len(g.intents) >= intentMax {
			return
		}
	}
	g.intents[name+"@"+m.Addr] = now
}

// announceLeave tells every peer, by UDP, that this node is about to
// leave. It runs in Close before memberlist's Leave, whose dead message
// follows at the next gossip tick, so the intent normally arrives first; a
// peer that misses it reports Fail instead of Leave.
func (g *Gossip) announceLeave() {
	g.mu.Lock()
	g.leaving = true
	g.mu.Unlock()
	msg := []byte(leaveIntent + g.name)
	for _, n := range g.ml.Members() {
		if n.Name == g.name {
			continue
		}
		if err := g.ml.SendBestEffort(n, msg); err != nil {
			g.log.Debug("membership: leave intent not sent", zap.String("peer", n.Name), zap.Error(err))
		}
	}
}

// judge decides, from this member's side, whether a peer may be a member.
// It returns nil to accept, or the refusal (also recorded and logged once;
// a probe is refused silently).
func (g *Gossip) judge(name, addr string, raw []byte) *refusal {
	if name == g.name {
		return nil // memberlist handles claims on our own name (it refutes them)
	}
	local := g.local.Load().meta
	r := refusal{Name: name, Addr: addr, By: g.name, Role: local.Role}
	if bytes.Equal(raw, probeMeta) {
		r.Reason = "probe"
		return &r
	}

	g.mu.Lock()
	var coords []Member
	holder, taken := g.members[name]
	for _, m := range g.members {
		if m.Meta.Role == Coordinator && m.Name != name && m.Name != g.name {
			coords = append(coords, m)
		}
	}
	g.mu.Unlock()

	m, err := DecodeMeta(raw)
	switch {
	case taken && holder.Addr != addr:
		r.Reason = fmt.Sprintf("name %q is already in use by the member at %s", name, holder.Addr)
	case err != nil:
		r.Reason = "unreadable meta: " + err.Error()
		if m.Protocol != 0 && m.Protocol != local.Protocol {
			r.Reason = incompatible(m, local)
		}
	default:
		if r.Reason = incompatible(m, local); r.Reason != "" {
			break
		}
		slices.SortFunc(coords, byRoleName)
		for _, c := range coords {
			if reason := incompatible(m, c.Meta); reason != "" {
				r.By, r.Role, r.Reason = c.Name, Coordinator, reason
				break
			}
		}
		if r.Reason == "" && g.cfg.Accept != nil {
			if err := g.cfg.Accept(m); err != nil {
				r.Reason = "not accepted: " + err.Error()
			}
		}
	}
	if r.Reason == "" {
		return nil
	}
	g.mu.Lock()
	isNew := g.refused.add(r, time.Now())
	g.mu.Unlock()
	if isNew {
		g.log.Warn("membership: refusing peer", zap.String("peer", name), zap.String("addr", addr),
			zap.String("by", r.By), zap.String("reason", r.Reason))
	}
	return &r
}

// vetMerge implements NotifyMerge. While Start is joining, the peers are
// the seed's cluster and this node is the newcomer: it checks itself against
// each of them, phrasing the refusal as the seed would, and remembers the
// veto so that Start can return it (memberlist only passes its text on),
// and notes whether the seed lists this node (confirmation). When not
// joining, the peers are a joiner's state and each is judged. (The probe
// memberlist has its own NotifyMerge: probeDelegate.)
func (g *Gossip) vetMerge(peers []*memberlist.Node) error {
	g.mu.Lock()
	joining := g.joining
	g.mu.Unlock()
	if !joining {
		for _, p := range peers {
			if p.State != memberlist.StateAlive && p.State != memberlist.StateSuspect {
				continue
			}
			if r := g.judge(p.Name, nodeAddr(p), p.Meta); r != nil {
				return fmt.Errorf("membership: refusing %q: %s", p.Name, r.Reason)
			}
		}
		return nil
	}

	veto, listed := g.vetCluster(peers)
	if veto != nil {
		g.recordVeto(veto)
		return veto
	}
	if listed {
		g.mu.Lock()
		g.conf.listed = true
		g.mu.Unlock()
	}
	return nil
}

// vetCluster checks this (joining) node against a seed's cluster state. It
// returns the first objection, coordinators first, and whether the state
// lists this node alive at its own address.
func (g *Gossip) vetCluster(peers []*memberlist.Node) (veto *RefusedError, listed bool) {
	local := g.local.Load().meta
	type peer struct {
		n *memberlist.Node
		m Meta
	}
	ps := make([]peer, 0, len(peers))
	for _, p := range peers {
		live := p.State == memberlist.StateAlive || p.State == memberlist.StateSuspect
		if p.Name == g.name {
			switch {
			case nodeAddr(p) == g.addr:
				listed = listed || live
			case p.State == memberlist.StateDead:
				// memberlist would ignore this node silently (no DeadNodeReclaimTime).
				return &RefusedError{Reason: fmt.Sprintf(
					"name %q is held by a failed member at %s until the cluster forgets it", p.Name, nodeAddr(p))}, false
			case live:
				return &RefusedError{Reason: fmt.Sprintf("name %q is already in use by the member at %s", p.Name, nodeAddr(p))}, false
			}
			continue
		}
		if !live || bytes.Equal(p.Meta, probeMeta) {
			continue
		}
		m, err := DecodeMeta(p.Meta)
		switch {
		case err != nil && m.Protocol != 0 && m.Protocol != local.Protocol:
			return &RefusedError{By: p.Name, Reason: incompatible(local, m)}, false
		case err != nil:
			return &RefusedError{By: g.name, Role: local.Role,
				Reason: fmt.Sprintf("peer %q has unreadable meta: %v", p.Name, err)}, false
		}
		ps = append(ps, peer{p, m})
	}
	slices.SortFunc(ps, func(a, b peer) int {
		return byRoleName(Member{Name: a.n.Name, Meta: a.m}, Member{Name: b.n.Name, Meta: b.m})
	})
	for _, p := range ps {
		if reason := incompatible(local, p.m); reason != "" {
			return &RefusedError{By: p.n.Name, Role: p.m.Role, Reason: reason}, false
		}
		if g.cfg.Accept != nil {
			if err := g.cfg.Accept(p.m); err != nil {
				return &RefusedError{By: g.name, Role: local.Role,
					Reason: fmt.Sprintf("%s %q not accepted: %v", p.m.Role, p.n.Name, err)}, false
			}
		}
	}
	return nil, listed
}

// localState is the push/pull user state: on joins, the recent refusals, so
// that a refused joiner learns why (see Gossip.confirm).
func (g *Gossip) localState(join bool) []byte {
	if !join {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.refused) == 0 {
		return nil
	}
	return g.refused.encode(time.Now())
}

func (g *Gossip) mergeRemoteState(buf []byte, join bool) {
	if !join {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.joining {
		return
	}
	if r, age := findRefusal(buf, g.name, g.addr); r != nil {
		g.conf.refused, g.conf.age = r, age
	}
}

// String helps in logs and test failures.
func (m Member) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s@%s{%s grpc=%s proto=%d cap=%d", m.Name, m.Addr, m.Meta.Role, m.Meta.GRPC, m.Meta.Protocol, m.Meta.Capacity)
	if m.Meta.Real >= 0 {
		fmt.Fprintf(&b, " real=%d", m.Meta.Real)
	}
	if m.Meta.Config != "" {
		fmt.Fprintf(&b, " config=%s", short(m.Meta.Config))
	}
	b.WriteString("}")
	return b.String()
}
