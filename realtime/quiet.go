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
	quiet := quietApp{App: app, empty: subscriptions.NewBroker()}
	// quieted reports whether PocketBase's broadcaster may skip this model.
	quieted := func(model core.Model) bool {
		record, ok := model.(*core.Record)
		return ok && slices.Contains(chatCollections, record.Collection().Name) && h.pocketBaseServed.Load() == 0
	}
	onModel := func(e *core.ModelEvent) error {
		if !quieted(e.Model) {
			return e.Next()
		}
		return withApp(&e.App, quiet.over(e.App), e.Next)
	}
	handler := &hook.Handler[*core.ModelEvent]{Func: onModel, Priority: -99}
	app.OnModelAfterCreateSuccess().Bind(handler)
	app.OnModelAfterUpdateSuccess().Bind(handler)
	app.OnModelAfterDeleteSuccess().Bind(handler)
	// PocketBase caches a deleted record's messages per client at priority 99.
	app.OnModelDelete().Bind(&hook.Handler[*core.ModelEvent]{Func: onModel, Priority: 98})
	app.OnModelAfterDeleteError().Bind(&hook.Handler[*core.ModelErrorEvent]{
		Func: func(e *core.ModelErrorEvent) error {
			if !quieted(e.Model) {
				return e.Next()
			}
			return withApp(&e.App, quiet.over(e.App), e.Next)
		},
		Priority: -99,
	})
}

// over is the quiet app in front of app (a transaction's app, say).
func (a quietApp) over(app core.App) quietApp { return quietApp{App: app, empty: a.empty} }

// withApp runs next with *slot set to app, then puts the original back.
func withApp(slot *core.App, app core.App, next func() error) error {
	original := *slot
	*slot = app
	defer func() { *slot = original }()
	return next()
}
