package membership

import (
	"context"
	"fmt"
)

// Membership is what the coordinator needs of the cluster. *Gossip
// implements it over memberlist; fakes implement it in tests. All methods
// must be safe for concurrent use.
type Membership interface {
	// Members returns the live members (alive or suspected, including the
	// local node), sorted by name.
	Members() []Member
	// Events returns the channel of membership changes. It is buffered,
	// never blocks the implementation (when full, the oldest event is
	// dropped) and is closed by Close.
	Events() <-chan Event
	// Close leaves the cluster gracefully within ctx's deadline and stops.
	// It is idempotent.
	Close(ctx context.Context) error
}

// Member is a process in the cluster.
type Member struct {
	Name string // unique node name
	Addr string // gossip address host:port
	Meta Meta
}

// EventKind says what happened to a member.
type EventKind int

// Event kinds.
const (
	Join   EventKind = iota + 1 // a member became alive
	Update                      // a member changed its Meta
	Leave                       // a member left gracefully (Close)
	Fail                        // a member was declared dead: crashed or unreachable
)

func (k EventKind) String() string {
	switch k {
	case Join:
		return "join"
	case Update:
		return "update"
	case Leave:
		return "leave"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one membership change. For Leave and Fail, Member holds the last
// known Meta.
type Event struct {
	Kind   EventKind
	Member Member
}

func (e Event) String() string { return e.Kind.String() + " " + e.Member.Name }
