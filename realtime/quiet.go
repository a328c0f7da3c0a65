package realtime

import (
	"slices"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/subscriptions"
)

// PocketBase's broadcaster walks every connected client of the node for
// every record event, even when none of them subscribed to that collection
// through PocketBase. For chat records the hub has delivered already; when
// no connection on this node holds a PocketBase-served chat subscription (a
// superuser's, or one with filter/expand/fields), the broadcaster is handed
// an app whose broker is empty, and the walk costs nothing.
//
// Hook order makes this work: PocketBase binds its record hooks at priority
// -99 when the app is created and its realtime broadcaster at -99 when the
// router is built (at serve); handlers bound in between, by Register, run
// after the first and before the second.

// quietApp is the app with an empty subscriptions broker.
type quietApp struct {
	core.App
	empty *subscriptions.Broker
}

func (a quietApp) SubscriptionsBroker() *subscriptions.Broker { return a.empty }

func (h *Hub) bindQuietBroadcasts(app core.App) {
	empty := subscriptions.NewBroker()
	quiet := func(e *core.ModelEvent) error {
		record, ok := e.Model.(*core.Record)
		if !ok || !slices.Contains(chatCollections, record.Collection().Name) || h.pocketBaseServed.Load() > 0 {
			return e.Next()
		}
		original := e.App
		e.App = quietApp{App: original, empty: empty}
		defer func() { e.App = original }()
		return e.Next()
	}
	handler := &hook.Handler[*core.ModelEvent]{Func: quiet, Priority: -99}
	app.OnModelAfterCreateSuccess().Bind(handler)
	app.OnModelAfterUpdateSuccess().Bind(handler)
	app.OnModelAfterDeleteSuccess().Bind(handler)
	// PocketBase caches a deleted record's messages per client at priority 99.
	app.OnModelDelete().Bind(&hook.Handler[*core.ModelEvent]{Func: quiet, Priority: 98})
	app.OnModelAfterDeleteError().Bind(&hook.Handler[*core.ModelErrorEvent]{
		Func: func(e *core.ModelErrorEvent) error {
			record, ok := e.Model.(*core.Record)
			if !ok || !slices.Contains(chatCollections, record.Collection().Name) || h.pocketBaseServed.Load() > 0 {
				return e.Next()
			}
			original := e.App
			e.App = quietApp{App: original, empty: empty}
			defer func() { e.App = original }()
			return e.Next()
		},
		Priority: -99,
	})
}
