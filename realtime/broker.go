// Package realtime delivers room events to the clients connected to this
// node: room topics (chat/rooms/{id}) and PocketBase's stock subscriptions to
// the chat collections, which it takes over so that a message costs work in
// proportion to the room's connected members, not to every connected client.
package realtime

import (
	"sync"

	"github.com/pbchat/pbchat/internal/chat"
)

// Broker carries events from the node that writes them to the nodes that
// hold connections. A node follows a room while it has a connected client
// interested in it and receives that room's events only while it does;
// events addressed to users (Event.Users) reach every node.
type Broker interface {
	// Publish sends an event once, after its write has committed.
	Publish(event chat.Event) error
	// Listen sets the function this node's events arrive at.
	Listen(deliver func(chat.Event))
	// Follow and Unfollow tell the broker which rooms this node needs.
	Follow(room string)
	Unfollow(room string)
}

// LocalBroker is the in-process Broker: one node, no bus.
type LocalBroker struct {
	mu      sync.RWMutex
	deliver func(chat.Event)
}

// NewLocalBroker returns a broker that delivers in the publishing process.
func NewLocalBroker() *LocalBroker { return &LocalBroker{} }

func (b *LocalBroker) Publish(event chat.Event) error {
	b.mu.RLock()
	deliver := b.deliver
	b.mu.RUnlock()
	if deliver != nil {
		deliver(event)
	}
	return nil
}

func (b *LocalBroker) Listen(deliver func(chat.Event)) {
	b.mu.Lock()
	b.deliver = deliver
	b.mu.Unlock()
}

func (b *LocalBroker) Follow(string)   {}
func (b *LocalBroker) Unfollow(string) {}
