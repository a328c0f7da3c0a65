package hooks

import (
	"container/heap"
	"sync"
	"time"

	"github.com/pbchat/pbchat/internal/chat"
)

// sequencerMaxWait is how long a logged change may wait for an earlier one
// that has not been published yet. Changes commit in log order, but their
// after-commit hooks run on each request's goroutine, so they reach the
// sequencer in any order; a seq that never comes (its publish failed, or a
// host hook ended the after-commit chain before pbchat's) holds the later
// ones this long at most.
const sequencerMaxWait = time.Second

// sequencer publishes logged changes in log order. Without it a member's
// rejoin published before a message posted while they were away would
// deliver that message to them, and a client could save a cursor past an
// event it has not had yet.
type sequencer struct {
	publish chat.Publisher
	// firstSeq is the first seq of an epoch this process writes.
	firstSeq func(epoch string) (int64, bool)
	maxWait  time.Duration

	mu      sync.Mutex
	epoch   string
	next    int64     // the seq to publish next
	stalled time.Time // since when next has been awaited with later ones held
	held    heldEvents
	timer   *time.Timer
}

// heldEvent is a change waiting for the ones before it. A change that owns
// its seq (the log row is its own) goes out when next reaches seq; one that
// carries the cursor before another's row (what a deletion cascaded) goes
// out once that seq has been published.
type heldEvent struct {
	seq   int64
	owned bool
	skip  bool // a logged change that publishes nothing
	event chat.Event
}

func newSequencer(publish chat.Publisher, firstSeq func(string) (int64, bool)) *sequencer {
	return &sequencer{publish: publish, firstSeq: firstSeq, maxWait: sequencerMaxWait}
}

// submit publishes event now or once the changes before c have been.
// owned is false for a cursor that is not the event's own log row (what a
// deletion cascaded carries the cursor just before the deletion's row).
func (s *sequencer) submit(c cursor, owned bool, event chat.Event) {
	s.hold(c, heldEvent{seq: c.seq, owned: owned, event: event})
}

// skip marks a logged change that publishes nothing, so that the ones after
// it do not wait for it.
func (s *sequencer) skip(c cursor) {
	s.hold(c, heldEvent{seq: c.seq, owned: true, skip: true})
}

func (s *sequencer) hold(c cursor, h heldEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.epoch == "" { // not logged (media): nothing to keep in order with
		s.emit(h)
		return
	}
	if c.epoch != s.epoch {
		first, ok := s.firstSeq(c.epoch)
		if !ok { // not this process's epoch: nothing to wait for
			s.emit(h)
			return
		}
		// An epoch rolled back before its first commit has nothing more to come.
		for len(s.held) > 0 {
			s.emit(heap.Pop(&s.held).(heldEvent))
		}
		s.epoch, s.next, s.stalled = c.epoch, first, time.Time{}
	}
	heap.Push(&s.held, h)
	s.release()
}

// release publishes what is due, in order, and arms the timer for what waits.
func (s *sequencer) release() {
	for len(s.held) > 0 {
		head := s.held[0]
		if due := head.seq < s.next || head.owned && head.seq == s.next; !due {
			if s.stalled.IsZero() {
				s.stalled = time.Now()
			}
			if wait := s.maxWait - time.Since(s.stalled); wait > 0 {
				s.arm(wait)
				return
			}
			// What comes before head never came: go on without it.
			s.next = head.seq
			if !head.owned {
				s.next++
			}
			continue
		}
		heap.Pop(&s.held)
		if head.owned && head.seq == s.next {
			s.next++
		}
		s.stalled = time.Time{}
		s.emit(head)
	}
}

func (s *sequencer) emit(h heldEvent) {
	if !h.skip {
		s.publish(h.event)
	}
}

func (s *sequencer) arm(d time.Duration) {
	if s.timer == nil {
		s.timer = time.AfterFunc(d, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.release()
		})
		return
	}
	s.timer.Reset(d)
}

// heldEvents is a min-heap by seq; at one seq its owner comes before what
// carries it as the cursor before a cascade.
type heldEvents []heldEvent

func (h heldEvents) Len() int { return len(h) }
func (h heldEvents) Less(i, j int) bool {
	if h[i].seq != h[j].seq {
		return h[i].seq < h[j].seq
	}
	return h[i].owned && !h[j].owned
}
func (h heldEvents) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldEvents) Push(x any)   { *h = append(*h, x.(heldEvent)) }
func (h *heldEvents) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
