// Package realtime delivers room events to the clients connected to this
// node: room topics (chat/rooms/{id}) and PocketBase's stock subscriptions to
// the chat collections, which it takes over so that a message costs work in
// proportion to the room's connected members, not to every connected client.
package realtime

import (
	"sync"

	"github.com/pbchat/pbchat/internal/chat"
)

// Broker carries events from the process that writes them (the writer) to
// the hubs that hold connections. A realtime node follows a room while it
// has a connected client interested in it and receives that room's events
// only while it does; events addressed to users (Event.Users) and
// membership events (member.*, room.deleted) reach every hub.
type Broker interface {
	// Publish sends an event once, after its write has committed.
	Publish(event chat.Event) error
	// Listen sets where this hub's events arrive.
	Listen(listener Listener)
	// Follow and Unfollow tell the broker which rooms this hub needs. When
	// Follow returns (catchUp false) events published from then on arrive.
	//
	// catchUp is set when the listener, while handling an event that made
	// one of its users a member of room (member.joined), starts following
	// it: the broker then also delivers the room's events published after
	// that one and before the follow took effect. An error means it could
	// not: the room's events since that membership event may be incomplete.
	Follow(room string, catchUp bool) error
	Unfollow(room string)
}

// Listener receives what a broker carries.
type Listener interface {
	// Deliver hands over one event, in the order the writer published them.
	Deliver(event chat.Event)
	// Lost says events may have been lost: of room, or of every room when
	// room is "" (the bus reconnected, this hub fell behind). Clients that
	// could have missed them must resynchronise.
	Lost(room string)
}

// LocalBroker is the in-process Broker: one process, no bus.
type LocalBroker struct {
	mu       sync.RWMutex
	listener Listener
}

// NewLocalBroker returns a broker that delivers in the publishing process.
func NewLocalBroker() *LocalBroker { return &LocalBroker{} }

// Publish delivers the event at once, on the caller's goroutine.
func (b *LocalBroker) Publish(event chat.Event) error {
	b.mu.RLock()
	listener := b.listener
	b.mu.RUnlock()
	if listener != nil {
		listener.Deliver(event)
	}
	return nil
}

// Listen sets the listener Publish delivers to.
func (b *LocalBroker) Listen(listener Listener) {
	b.mu.Lock()
	b.listener = listener
	b.mu.Unlock()
}

// Follow has nothing to do: every event is delivered in process.
func (b *LocalBroker) Follow(string, bool) error { return nil }

// Unfollow has nothing to do, as Follow.
func (b *LocalBroker) Unfollow(string) {}
