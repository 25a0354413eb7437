package coordinator

import (
	"slices"
	"testing"
	"time"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/engine"
)

func tasksOf(ids ...int) []engine.Task {
	ts := make([]engine.Task, len(ids))
	for i, id := range ids {
		ts[i] = engine.Task{Client: id}
	}
	return ts
}

func TestQueueRealClientsAndOrder(t *testing.T) {
	q := newQueue(tasksOf(3, 7, 9), 0, map[int64]bool{7: true})
	virtual, real7, real5 := Host{Name: "v", Real: -1}, Host{Name: "r7", Real: 7}, Host{Name: "r5", Real: 5}
	if got, ok := q.take(real5, false); ok {
		t.Fatalf("the process of real client 5 (not sampled) took %v", got)
	}
	var order []int
	for {
		got, ok := q.take(virtual, false)
		if !ok {
			break
		}
		order = append(order, got.Client)
	}
	if !slices.Equal(order, []int{3, 9}) {
		t.Fatalf("a virtual process took %v, want [3 9]: never real client 7's task", order)
	}
	if !q.hasWork(real7) || q.hasWork(virtual) {
		t.Fatal("hasWork disagrees with take")
	}
	if got, ok := q.take(real7, false); !ok || got.Client != 7 {
		t.Fatalf("real client 7's process took %v, %v", got, ok)
	}
	if q.left() != 3 {
		t.Fatalf("left %d, want 3 in flight", q.left())
	}
	q.requeue(tasksOf(9), 1, nil)
	q.computed(false)
	q.done(&algorithms.Update{Client: 3}, true)
	q.done(&algorithms.Update{Client: 1000}, false) // not a task: kept for the engine, not counted
	if q.left() != 2 {
		t.Fatalf("left %d, want 2 (9 pending, 7 in flight)", q.left())
	}
	ups, missing := q.result(tasksOf(3, 7, 9))
	if len(ups) != 2 || !slices.Equal(missing, []int{7, 9}) {
		t.Fatalf("result %d updates, missing %v", len(ups), missing)
	}
}

// TestQueueLimit: with every slot of the in-flight limit taken, take waits
// (or not), and a report or the round's end wakes it.
func TestQueueLimit(t *testing.T) {
	q := newQueue(tasksOf(1, 2, 3), 1, nil)
	h := Host{Name: "p", Real: -1}
	if _, ok := q.take(h, false); !ok {
		t.Fatal("first take failed")
	}
	if _, ok := q.take(h, false); ok {
		t.Fatal("took past the limit")
	}
	got := make(chan int)
	go func() {
		task, ok := q.take(h, true)
		if !ok {
			got <- -1
			return
		}
		got <- task.Client
	}()
	select {
	case c := <-got:
		t.Fatalf("take did not wait: %d", c)
	case <-time.After(50 * time.Millisecond):
	}
	q.computed(false) // the header of client 1's update came: its slot is free
	if c := <-got; c != 2 {
		t.Fatalf("after a report took %d, want 2", c)
	}
	go func() {
		_, ok := q.take(h, true)
		got <- map[bool]int{true: 1, false: 0}[ok]
	}()
	time.Sleep(20 * time.Millisecond)
	q.close()
	if c := <-got; c != 0 {
		t.Fatal("take handed out a task after close")
	}
}

// TestQueueQueued: tasks queued at a process do not count toward the
// limit until one of its running tasks is computed and a queued one takes
// the worker; a failed call gives both kinds back.
func TestQueueQueued(t *testing.T) {
	q := newQueue(tasksOf(1, 2, 3, 4), 1, nil)
	h := Host{Name: "p", Real: -1}
	if _, ok := q.take(h, false); !ok {
		t.Fatal("take failed")
	}
	if _, ok := q.take(h, false); ok {
		t.Fatal("took past the limit")
	}
	for range 2 {
		if _, ok := q.takeQueued(h); !ok {
			t.Fatal("takeQueued failed")
		}
	}
	q.computed(true) // task 1 done, a queued one runs: the limit is still taken
	if _, ok := q.take(h, false); ok {
		t.Fatal("took past the limit after a promotion")
	}
	q.done(&algorithms.Update{Client: 1}, true)
	if q.left() != 3 {
		t.Fatalf("left %d, want 3 (1 pending, 1 running, 1 queued)", q.left())
	}
	q.requeue(tasksOf(2, 3), 1, nil) // the call failed with 2 running, 3 queued
	if q.left() != 3 || q.inFlight != 0 || q.queued != 0 {
		t.Fatalf("after requeue: left %d, in flight %d, queued %d; want 3, 0, 0", q.left(), q.inFlight, q.queued)
	}
	if task, ok := q.take(h, false); !ok || task.Client != 2 {
		t.Fatalf("took %v, %v; want client 2 first again", task, ok)
	}
}
