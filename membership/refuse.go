package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// ErrRefused is matched (errors.Is) by every *RefusedError: Start failed
// because this process and the cluster are incompatible, not because of the
// network. Retrying with the same build and config cannot succeed.
var ErrRefused = errors.New("membership: refused")

// RefusedError says which member refuses (or would refuse) this process and
// why. Start returns it when the protocol versions differ, the config
// fingerprint differs from a coordinator's, an Accept function vetoes, or
// the node name is taken.
type RefusedError struct {
	By     string // name of the refusing member ("" for a name conflict)
	Role   Role   // its role ("" if unknown)
	Reason string // e.g. "protocol version 2, want 1"
}

func (e *RefusedError) Error() string {
	if e.By == "" {
		return "membership: refused: " + e.Reason
	}
	if e.Role == "" {
		return fmt.Sprintf("membership: refused by %q: %s", e.By, e.Reason)
	}
	return fmt.Sprintf("membership: refused by %s %q: %s", e.Role, e.By, e.Reason)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// incompatible says why a process advertising j cannot be a member of a
// cluster in which a member advertises e, phrased from e's side ("" if they
// are compatible). The verdict is symmetric; only the phrasing depends on
// which is the newcomer. Rules: protocol versions must be equal; a non-empty
// config fingerprint must equal a coordinator's non-empty fingerprint.
// Clients' fingerprints are not compared with each other.
func incompatible(j, e Meta) string {
	if j.Protocol != e.Protocol {
		return fmt.Sprintf("protocol version %d, want %d", j.Protocol, e.Protocol)
	}
	if j.Config == "" || e.Config == "" || j.Config == e.Config {
		return ""
	}
	switch {
	case e.Role == Coordinator:
		return fmt.Sprintf("config fingerprint %s differs from the coordinator's %s", short(j.Config), short(e.Config))
	case j.Role == Coordinator:
		return fmt.Sprintf("the coordinator's config fingerprint %s differs from this client's %s", short(j.Config), short(e.Config))
	}
	return ""
}

// Refusal table: a member that refuses a peer remembers why for a while and
// sends the reasons in its push/pull user state on joins, so that a refused
// process learns the reason during Start (see Gossip.confirm) even when only
// the remote side can judge (its Accept function).
const (
	refusalTTL     = time.Minute
	refusalMax     = 64
	refusalReasonN = 300 // bytes of a reason kept
)

type refusal struct {
	Name   string    `json:"n"`   // refused node
	Addr   string    `json:"a"`   // its gossip address
	By     string    `json:"b"`   // refusing member
	Role   Role      `json:"r"`   // its role
	Reason string    `json:"m"`   // why
	AgeMS  int64     `json:"age"` // milliseconds since recorded, set when sent
	at     time.Time // when recorded (last)
}

// userState is the push/pull user state: version and recent refusals.
type userState struct {
	V       int       `json:"v"`
	Refused []refusal `json:"refused,omitempty"`
}

// refusals is a small bounded, expiring table keyed by name@addr. It is
// guarded by the Gossip's mutex.
type refusals map[string]refusal

// add records r and reports whether it is new or its reason changed (so the
// caller logs each refusal once, not on every gossip round).
func (t refusals) add(r refusal, now time.Time) bool {
	if len(r.Reason) > refusalReasonN {
		r.Reason = r.Reason[:refusalReasonN]
	}
	r.at = now
	k := r.Name + "@" + r.Addr
	old, ok := t[k]
	t[k] = r
	t.expire(now)
	return !ok || old.Reason != r.Reason || old.By != r.By
}

func (t refusals) expire(now time.Time) {
	for k, r := range t {
		if now.Sub(r.at) > refusalTTL {
			delete(t, k)
		}
	}
	for len(t) > refusalMax {
		oldest := ""
		for k, r := range t {
			if oldest == "" || r.at.Before(t[oldest].at) {
				oldest = k
			}
		}
		delete(t, oldest)
	}
}

func (t refusals) encode(now time.Time) []byte {
	t.expire(now)
	s := userState{V: 1}
	for _, r := range t {
		r.AgeMS = now.Sub(r.at).Milliseconds()
		s.Refused = append(s.Refused, r)
	}
	sort.Slice(s.Refused, func(i, k int) bool {
		a, b := s.Refused[i], s.Refused[k]
		return a.Name+"@"+a.Addr < b.Name+"@"+b.Addr
	})
	b, err := json.Marshal(s)
	if err != nil {
		return nil
	}
	return b
}

// findRefusal looks for name@addr among the refusals in a peer's user
// state and returns it with its age.
func findRefusal(buf []byte, name, addr string) (*RefusedError, time.Duration) {
	var s userState
	if len(buf) == 0 || json.Unmarshal(buf, &s) != nil || s.V != 1 {
		return nil, 0
	}
	for _, r := range s.Refused {
		if r.Name == name && r.Addr == addr && r.AgeMS >= 0 {
			return &RefusedError{By: r.By, Role: r.Role, Reason: r.Reason}, time.Duration(r.AgeMS) * time.Millisecond
		}
	}
	return nil, 0
}
