// Package membershiptest provides Fake, a scripted membership.Membership
// for tests of code that consumes membership (the coordinator, client
// processes) without sockets, clocks or memberlist. Tests drive it with
// one-line helpers: Join, Update, Leave, Fail.
package membershiptest

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/fedmo/fedmo/membership"
)

// Fake is an in-memory Membership. Its event channel has the same
// semantics as membership.Gossip's: buffered, never blocking the script
// (the oldest event is dropped when full, and counted), updated together
// with Members, closed by Close. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	members map[string]membership.Member
	events  chan membership.Event
	closed  bool
	dropped int
}

var _ membership.Membership = (*Fake)(nil)

// New returns a Fake whose event channel holds buffer events (1024 if
// buffer <= 0), with the given members joined (their Join events queued).
func New(buffer int, members ...membership.Member) *Fake {
	if buffer <= 0 {
		buffer = 1024
	}
	f := &Fake{members: make(map[string]membership.Member), events: make(chan membership.Event, buffer)}
	for _, m := range members {
		f.Join(m)
	}
	return f
}

// Member is a shorthand for a member with a valid Meta of the given role.
func Member(name string, role membership.Role, grpc string) membership.Member {
	return membership.Member{Name: name, Addr: "127.0.0.1:7946", Meta: membership.Meta{
		Role: role, GRPC: grpc, Protocol: membership.ProtocolVersion, Capacity: 1, Real: -1}}
}

// Join adds (or re-adds) m and queues a Join event.
func (f *Fake) Join(m membership.Member) { f.apply(membership.Join, m) }

// Update replaces m's Meta and queues an Update event.
func (f *Fake) Update(m membership.Member) { f.apply(membership.Update, m) }

// Leave removes the named member as a graceful leave.
func (f *Fake) Leave(name string) { f.remove(membership.Leave, name) }

// Fail removes the named member as a failure.
func (f *Fake) Fail(name string) { f.remove(membership.Fail, name) }

// Dropped returns how many events were dropped because the buffer was full.
func (f *Fake) Dropped() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped
}

// Members returns the current members sorted by name (nil after Close).
func (f *Fake) Members() []membership.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	out := make([]membership.Member, 0, len(f.members))
	for _, m := range f.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b membership.Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Events returns the event channel.
func (f *Fake) Events() <-chan membership.Event { return f.events }

// Close closes the event channel. It is idempotent.
func (f *Fake) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.events)
	}
	return nil
}

func (f *Fake) apply(kind membership.EventKind, m membership.Member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.members[m.Name] = m
	f.queue(membership.Event{Kind: kind, Member: m})
}

func (f *Fake) remove(kind membership.EventKind, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.members[name]
	if f.closed || !ok {
		return
	}
	delete(f.members, name)
	f.queue(membership.Event{Kind: kind, Member: m})
}

func (f *Fake) queue(e membership.Event) {
	select {
	case f.events <- e:
		return
	default:
	}
	select {
	case <-f.events:
		f.dropped++
	default:
	}
	select {
	case f.events <- e:
	default:
		f.dropped++
	}
}
