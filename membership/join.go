package membership

import (
	"context"
	"fmt"
	"log"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// confirmTimeout bounds how long Start waits for a seed to list the new node
// (normally one extra push/pull, about a millisecond on loopback).
const confirmTimeout = 5 * time.Second

// probe checks, before this node exists in any cluster, that each seed is
// reachable and that this node may join the seed's cluster. It uses a
// throwaway memberlist on an ephemeral port of the bind host that advertises
// probeMeta: a seed answers a join push/pull with its cluster state, and
// refuses to merge a probe, silently, so the probe leaves no trace. The
// probe's NotifyMerge checks this node against that state (vetCluster) and
// refuses the merge as well, with the objection or errProbeOK. It returns
// the reachable seeds, or a *RefusedError, or an error naming every seed.
//
// A separate memberlist, rather than the real one advertising probeMeta
// first, because switching meta needs UpdateNode, and a broadcast queued
// while a node has no peers trips memberlist v0.7.0's broadcast-queue id
// bug (hashicorp/memberlist#263): later broadcasts, such as Leave's, can be
// dropped silently.
func (g *Gossip) probe(ctx context.Context, host string, seeds []string, mc *memberlist.Config, logger *log.Logger) ([]string, error) {
	var tried []string
	for _, s := range seeds {
		if !g.isSelf(s) {
			tried = append(tried, s)
		}
	}
	if len(tried) == 0 {
		return nil, nil
	}
	nt, err := newTransport(host, 0, logger)
	if err != nil {
		return nil, err
	}
	pc := memberlistConfig(g.cfg.Profile)
	pc.Name = g.name + "~probe"
	pc.Transport = nt
	pc.Logger = logger
	pc.SecretKey, pc.Label = mc.SecretKey, mc.Label
	pd := &probeDelegate{g}
	pc.Delegate, pc.Merge = pd, pd
	pml, err := memberlist.Create(pc)
	if err != nil {
		_ = nt.Shutdown()
		return nil, fmt.Errorf("membership: probe: %w", err)
	}
	defer pml.Shutdown()

	var reachable, failures []string
	for _, s := range tried {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("membership: join: %w", err)
		}
		_, err := pml.Join([]string{s})
		if err == nil || strings.Contains(err.Error(), errProbeOK.Error()) {
			reachable = append(reachable, s)
			continue
		}
		if v := g.takeVeto(err); v != nil {
			return nil, v
		}
		failures = append(failures, joinErrText(err))
	}
	if len(reachable) == 0 {
		msg := strings.Join(failures, "; ")
		if strings.Contains(msg, "EOF") {
			msg += " (an EOF here usually means a different gossip label or encryption key on the seed)"
		}
		return nil, fmt.Errorf("membership: join: no seed reachable (%s): %s", strings.Join(tried, ", "), msg)
	}
	return reachable, nil
}

// probeDelegate is the probe memberlist's Delegate and MergeDelegate.
type probeDelegate struct{ g *Gossip }

func (p *probeDelegate) NodeMeta(int) []byte               { return probeMeta }
func (p *probeDelegate) NotifyMsg([]byte)                  {}
func (p *probeDelegate) GetBroadcasts(_, _ int) [][]byte   { return nil }
func (p *probeDelegate) LocalState(bool) []byte            { return nil }
func (p *probeDelegate) MergeRemoteState(_ []byte, _ bool) {}
func (p *probeDelegate) NotifyMerge(peers []*memberlist.Node) error {
	if veto, _ := p.g.vetCluster(peers); veto != nil {
		p.g.recordVeto(veto)
		return veto
	}
	return errProbeOK
}

// join contacts the seeds for real (after probe) and confirms with each
// that it lists this node. It fails unless at least one seed confirms; a
// refusal by any seed is final.
func (g *Gossip) join(ctx context.Context, seeds []string) error {
	g.mu.Lock()
	g.joining = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.joining, g.vetoes, g.conf = false, nil, confirmation{}
		g.mu.Unlock()
	}()
	var tried, failures []string
	for _, s := range seeds {
		if g.isSelf(s) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("membership: join: %w", err)
		}
		tried = append(tried, s)
		t0 := time.Now()
		g.resetConfirmation()
		if _, err := g.ml.Join([]string{s}); err != nil {
			if v := g.takeVeto(err); v != nil {
				return v
			}
			failures = append(failures, joinErrText(err))
			continue
		}
		if err := g.confirm(ctx, s, t0); err != nil {
			return err
		}
	}
	if len(tried) > 0 && len(failures) == len(tried) {
		return fmt.Errorf("membership: join: no seed reachable (%s): %s", strings.Join(tried, ", "), strings.Join(failures, "; "))
	}
	return nil
}

// rejoin contacts seeds after Start (Gossip.Join), e.g. to merge with a
// coordinator restarted as a new cluster at a seed address. There is no
// probe: this node is already a member somewhere.
func (g *Gossip) rejoin(ctx context.Context, seeds []string) error {
	g.lifeMu.Lock()
	defer g.lifeMu.Unlock()
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return g.join(ctx, seeds)
}

// confirm repeats the push/pull with a seed that accepted this node's join
// until the seed lists this node or names a refusal younger than the join
// (t0). The seed merges the joiner's state only after answering, so the
// first answer does not list a new node yet.
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

func (g *Gossip) recordVeto(v *RefusedError) {
	g.mu.Lock()
	if len(g.vetoes) < 16 {
		g.vetoes = append(g.vetoes, v)
	}
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

// pushPullPeers sends this node's state to up to three live peers by TCP
// push/pull (memberlist Join), coordinators first. It backs up a Leave or
// UpdateNode broadcast that did not finish in time: memberlist v0.7.0 can
// drop a queued broadcast (hashicorp/memberlist#263), and a peer that
// receives a left or updated state by push/pull applies it and gossips it
// on. It reports how many peers took the state. Each contact is bounded by
// the profile's TCP timeout; it stops early when ctx is done. With no live
// peer left there is nobody to tell, and it reports -1.
func (g *Gossip) pushPullPeers(ctx context.Context) int {
	g.mu.Lock()
	var peers []Member
	for _, m := range g.members {
		if m.Name != g.name {
			peers = append(peers, m)
		}
	}
	g.mu.Unlock()
	if len(peers) == 0 {
		return -1
	}
	slices.SortFunc(peers, byRoleName)
	ok := 0
	for _, p := range peers {
		if ok == 3 || ctx.Err() != nil {
			break
		}
		if _, err := g.ml.Join([]string{p.Addr}); err != nil {
			g.log.Debug("membership: push/pull failed", zap.String("peer", p.Name), zap.Error(err))
		} else {
			ok++
		}
	}
	return ok
}
