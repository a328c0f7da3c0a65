package realtime

import (
	"sync"
	"sync/atomic"

	"github.com/pocketbase/pocketbase/tools/subscriptions"
)

// quietClient is PocketBase's client with a fast answer for the common case
// of a client that holds no PocketBase-served subscription (pbchat keeps chat
// subscriptions out of that set). PocketBase's broadcaster asks every
// connected client for its subscriptions on every record event; this makes
// the answer for such a client a load of one counter, with no allocation.
//
// It also makes Discard safe while a message is being sent: PocketBase's
// client closes its channel under a sender blocked on it (a panic it
// recovers from, and a data race), which a hub disconnecting a slow client
// would do every time.
type quietClient struct {
	*subscriptions.DefaultClient
	count atomic.Int64

	sending   sync.RWMutex  // held (read) by senders, (write) by Discard while it closes the channel
	gone      chan struct{} // closed first by Discard: unblocks senders
	closeOnce sync.Once

	// stream, when set, is the connection this client's events are written
	// to directly (stream.go); the channel is then unused. Set before the
	// client is registered, never changed.
	stream *sseStream
}

// NewClient returns the realtime client pbchat gives every connection.
func NewClient() subscriptions.Client {
	return &quietClient{DefaultClient: subscriptions.NewDefaultClient(), gone: make(chan struct{})}
}

// Send waits until the connection takes m, or the client is discarded.
func (c *quietClient) Send(m subscriptions.Message) {
	if c.stream != nil {
		if !c.IsDiscarded() {
			c.stream.send(m)
		}
		return
	}
	c.sending.RLock()
	defer c.sending.RUnlock()
	if c.IsDiscarded() {
		return
	}
	select {
	case c.Channel() <- m:
	case <-c.gone:
	}
}

// Discard ends the connection: senders give up, then the channel closes.
func (c *quietClient) Discard() {
	c.closeOnce.Do(func() { close(c.gone) })
	c.sending.Lock()
	c.DefaultClient.Discard()
	c.sending.Unlock()
	if c.stream != nil {
		// The hub discards clients under its lock; closing unregisters the
		// client from the hub, which takes it.
		go c.stream.close()
	}
}

// setStream makes the client write its events to st.
func (c *quietClient) setStream(st *sseStream) { c.stream = st }

// Subscribe adds PocketBase-served subscriptions and recounts them.
func (c *quietClient) Subscribe(subs ...string) {
	c.DefaultClient.Subscribe(subs...)
	c.recount()
}

// Unsubscribe removes subscriptions (all of them when subs is empty) and
// recounts them.
func (c *quietClient) Unsubscribe(subs ...string) {
	c.DefaultClient.Unsubscribe(subs...)
	c.recount()
}

// Subscriptions is PocketBase's answer, or nil at once for a client that
// holds none (the broadcaster asks every client on every record event).
func (c *quietClient) Subscriptions(prefixes ...string) map[string]subscriptions.SubscriptionOptions {
	if c.count.Load() == 0 {
		return nil
	}
	return c.DefaultClient.Subscriptions(prefixes...)
}

// recount caches how many subscriptions the client holds.
func (c *quietClient) recount() {
	c.count.Store(int64(len(c.DefaultClient.Subscriptions())))
}
