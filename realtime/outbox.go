package realtime

import (
	"sync"

	"github.com/pocketbase/pocketbase/tools/subscriptions"
)

// outboxSize bounds what a client may have queued. A client that falls this
// far behind is disconnected rather than silently skipped: it reconnects
// and resynchronises from its last cursor.
const outboxSize = 1024

// client is one SSE connection's chat subscriptions.
type client struct {
	pb     subscriptions.Client
	user   string
	topics map[string][]string   // room id → subscription names
	stock  map[string][]stockSub // collection name → subscriptions
	rooms  map[string]struct{}   // rooms followed: topics, and every membership when stock is set
	done   chan struct{}         // closed when the hub forgets the client

	// chat/presence subscription names (presence.go).
	presence []string

	// The client's queued events, oldest first, at most outboxSize. The
	// client is with the hub's pump workers (pumps.go) only while there are
	// some: an idle connection holds no goroutine and no buffer (a channel
	// of outboxSize would hold ~40 KB each).
	pumps   *pumps
	queueMu sync.Mutex
	queue   []queued
	pumping bool // queued with or served by a pump worker
}

type stockSub struct {
	name     string // the subscription exactly as the client sent it: the SSE event name
	recordID string // "*" or one record id
	// With filter/expand/fields options: rendered by the client's pump (options.go).
	options *subOptions
}

// keptQueue is the largest queue buffer a drained client keeps: the next
// event is queued without an allocation, and an idle client holds a few
// dozen bytes, not what a backlog grew.
const keptQueue = 2

// push queues msg; false when the outbox is full (the client is too slow).
func (c *client) push(msg queued) bool {
	ok, start := c.add(msg)
	if start {
		c.pumps.enqueue(c)
	}
	return ok
}

// add queues msg; start when the client must be handed to the pump workers
// (it had nothing queued). ok is false when the outbox is full.
func (c *client) add(msg queued) (ok, start bool) {
	c.queueMu.Lock()
	defer c.queueMu.Unlock()
	if len(c.queue) >= outboxSize {
		return false, false
	}
	c.queue = append(c.queue, msg)
	start = !c.pumping
	c.pumping = true
	return true, start
}

// pump hands up to turn queued messages to PocketBase's client one at a
// time, so each client gets its events in order and no publisher waits for
// a slow one. It returns true when events remain: the client stays with the
// pump workers. It stops early when the queue is empty (the next push
// queues the client again) or the client is gone.
func (c *client) pump(turn int) (more bool) {
	for i := 0; ; i++ {
		c.queueMu.Lock()
		if len(c.queue) == 0 || c.gone() {
			clear(c.queue)
			if c.queue = c.queue[:0]; cap(c.queue) > keptQueue {
				c.queue = nil
			}
			c.pumping = false
			c.queueMu.Unlock()
			return false
		}
		if i == turn {
			c.queueMu.Unlock()
			return true
		}
		msg := c.queue[0]
		c.queue[0] = queued{}
		if len(c.queue) == 1 {
			c.queue = c.queue[:0] // the buffer's start stays for the next event
		} else {
			c.queue = c.queue[1:]
		}
		c.queueMu.Unlock()
		if msg, ok := msg.resolve(); ok {
			c.pb.Send(msg)
		}
	}
}

func (c *client) gone() bool {
	select {
	case <-c.done:
		return true
	default:
		return c.pb.IsDiscarded()
	}
}
