package membershiptest

import (
	"context"
	"testing"

	"github.com/fedmo/fedmo/membership"
)

func TestFake(t *testing.T) {
	f := New(0, Member("coord", membership.Coordinator, "127.0.0.1:1"))
	f.Join(Member("c2", membership.Client, "127.0.0.1:3"))
	f.Join(Member("c1", membership.Client, "127.0.0.1:2"))
	c1 := Member("c1", membership.Client, "127.0.0.1:2")
	c1.Meta.Capacity = 4
	f.Update(c1)
	f.Fail("c2")
	f.Leave("c1")
	f.Leave("nobody") // no event
	if ms := f.Members(); len(ms) != 1 || ms[0].Name != "coord" {
		t.Errorf("Members() = %v", ms)
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.Join(c1) // after Close: ignored
	var got []string
	for e := range f.Events() {
		got = append(got, e.String())
	}
	want := []string{"join coord", "join c2", "join c1", "update c1", "fail c2", "leave c1"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %s, want %s", i, got[i], want[i])
		}
	}
	if f.Members() != nil || f.Close(context.Background()) != nil {
		t.Errorf("after Close: Members %v", f.Members())
	}
}

func TestFakeDropsOldest(t *testing.T) {
	f := New(2)
	for _, n := range []string{"a", "b", "c"} {
		f.Join(Member(n, membership.Client, "127.0.0.1:1"))
	}
	if f.Dropped() != 1 {
		t.Errorf("Dropped() = %d, want 1", f.Dropped())
	}
	if e := <-f.Events(); e.Member.Name != "b" {
		t.Errorf("oldest kept event is %v, want join b", e)
	}
}
