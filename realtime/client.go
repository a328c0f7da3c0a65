package realtime

import (
	"sync/atomic"

	"github.com/pocketbase/pocketbase/tools/subscriptions"
)

// quietClient is PocketBase's client with a fast answer for the common case
// of a client that holds no PocketBase-served subscription (pbchat keeps chat
// subscriptions out of that set). PocketBase's broadcaster asks every
// connected client for its subscriptions on every record event; this makes
// the answer for such a client a load of one counter, with no allocation.
type quietClient struct {
	*subscriptions.DefaultClient
	count atomic.Int64
}

// NewClient returns the realtime client pbchat gives every connection.
func NewClient() subscriptions.Client {
	return &quietClient{DefaultClient: subscriptions.NewDefaultClient()}
}

func (c *quietClient) Subscribe(subs ...string) {
	c.DefaultClient.Subscribe(subs...)
	c.recount()
}

func (c *quietClient) Unsubscribe(subs ...string) {
	c.DefaultClient.Unsubscribe(subs...)
	c.recount()
}

func (c *quietClient) Subscriptions(prefixes ...string) map[string]subscriptions.SubscriptionOptions {
	if c.count.Load() == 0 {
		return nil
	}
	return c.DefaultClient.Subscriptions(prefixes...)
}

func (c *quietClient) recount() {
	c.count.Store(int64(len(c.DefaultClient.Subscriptions())))
}
