package coordinator

import (
	"slices"
	"sync"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/engine"
)

// queue is one round's work: the tasks not yet handed out, those being
// computed, those whose update is being received, and the updates that
// came back. The round's Train calls take tasks from it as their processes
// free a worker.
type queue struct {
	mu        sync.Mutex
	cond      *sync.Cond
	pending   []engine.Task  // in the engine's order
	inFlight  int            // handed out to run at once, not computed yet
	queued    int            // handed out to wait for a worker at their process
	receiving int            // computed, update being received
	limit     int            // tasks in flight over all processes; 0 = no limit
	real      map[int64]bool // clients served by a real client's process
	updates   []*algorithms.Update
	reported  map[int]bool
	closed    bool // the round is over (deadline): hand out nothing more
}

func newQueue(tasks []engine.Task, limit int, real map[int64]bool) *queue {
	q := &queue{pending: append([]engine.Task(nil), tasks...), limit: limit, real: real, reported: map[int]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// runs reports whether host h can run task t: a real client's process only
// its own client, a process of virtual clients every other client.
func (q *queue) runs(h Host, t engine.Task) bool {
	if h.Real >= 0 {
		return int64(t.Client) == h.Real
	}
	return !q.real[int64(t.Client)]
}

// next returns the index in pending of the first task h can run, or -1.
func (q *queue) next(h Host) int {
	for i, t := range q.pending {
		if q.runs(h, t) {
			return i
		}
	}
	return -1
}

// hasWork reports whether a task is waiting that h can run.
func (q *queue) hasWork(h Host) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.closed && q.next(h) >= 0
}

// take hands the next task h can run to h. If none is left for h, or the
// round is closed, it reports false. If every slot of the in-flight limit
// is taken, it waits for one when wait is set (the caller has no task in
// flight to wait for instead), else reports false.
func (q *queue) take(h Host, wait bool) (engine.Task, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		i := q.next(h)
		if q.closed || i < 0 {
			return engine.Task{}, false
		}
		if q.limit <= 0 || q.inFlight < q.limit {
			t := q.pending[i]
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			q.inFlight++
			return t, true
		}
		if !wait {
			return engine.Task{}, false
		}
		q.cond.Wait()
	}
}

// takeQueued hands the next task h can run to h, to wait at h for a free
// worker: it does not count toward the limit until it runs (see
// computed). It never waits.
func (q *queue) takeQueued(h Host) (engine.Task, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := q.next(h)
	if q.closed || i < 0 {
		return engine.Task{}, false
	}
	t := q.pending[i]
	q.pending = append(q.pending[:i], q.pending[i+1:]...)
	q.queued++
	return t, true
}

// computed records that a task in flight was computed: its update's
// header arrived, its vectors follow. Its slot of the limit is free, or,
// if promote, taken by a task queued at the same process, which now runs.
func (q *queue) computed(promote bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.receiving++
	if promote {
		q.queued--
		return
	}
	q.inFlight--
	q.cond.Broadcast()
}

// done records an update that came back. task says whether it answers a
// computed task (else it is kept for the engine to reject).
func (q *queue) done(u *algorithms.Update, task bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.updates = append(q.updates, u)
	if task {
		q.reported[u.Client] = true
		q.receiving--
	}
}

// requeue puts the tasks of a failed call back: those in flight (of which
// the first running counted toward the limit, the others were queued), and
// the one whose update was being received (if not nil). They run
// elsewhere; the result does not depend on where.
func (q *queue) requeue(flight []engine.Task, running int, receiving *engine.Task) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inFlight -= running
	q.queued -= len(flight) - running
	q.pending = append(slices.Clone(flight), q.pending...)
	if receiving != nil {
		q.receiving--
		q.pending = append([]engine.Task{*receiving}, q.pending...)
	}
	q.cond.Broadcast()
}

// close ends the round: take hands out nothing more.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// left is the number of tasks not reported yet.
func (q *queue) left() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) + q.inFlight + q.queued + q.receiving
}

// result returns the updates and the clients that did not report.
func (q *queue) result(tasks []engine.Task) ([]*algorithms.Update, []int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var missing []int
	for _, t := range tasks {
		if !q.reported[t.Client] {
			missing = append(missing, t.Client)
		}
	}
	return q.updates, missing
}
