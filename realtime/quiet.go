package realtime

import (
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chat"
)

// PocketBase's broadcaster walks every connected client of the node for
// every record event, even when none of them subscribed to that collection
// through PocketBase. For chat records the hub has delivered already; when
// no connection on this node holds a PocketBase-served chat subscription (a
// superuser's; guests' and options are the hub's), the broadcaster is handed
// an app whose broker is empty, and the walk costs nothing.
//
// The hook-order workaround. The quiet app must be in the event when
// PocketBase's broadcaster runs, and PocketBase gives no hook for that: the
// handlers below wrap the broadcaster's by sharing its priority. Handlers of
// equal priority run in the order they were bound: PocketBase binds its
// model-to-record hooks at -99 when the app is created and its broadcaster
// at -99 when the router is built (apis.NewRouter, at serve); ours, bound by
// Register in between, run after the first and around the second. A host
// app that built its router before Register loses only the saving: the
// broadcaster then runs first and walks every client, correctly.
const (
	// broadcastPriority is PocketBase's for its realtime record hooks (apis/realtime.go).
	broadcastPriority = -99
	// deleteCachePriority runs just before PocketBase's delete hook (99),
	// which renders a deleted record's messages per client ahead of the delete.
	deleteCachePriority = 98
)

// quietApp is the app with an empty subscriptions broker.
type quietApp struct {
	core.App
	empty *subscriptions.Broker
}

// SubscriptionsBroker is the empty broker: PocketBase's broadcaster finds no
// client to walk.
func (a quietApp) SubscriptionsBroker() *subscriptions.Broker { return a.empty }

func (h *Hub) bindQuietBroadcasts(app core.App) {
	quiet := quietApp{App: app, empty: subscriptions.NewBroker()}
	// quieted reports whether PocketBase's broadcaster may skip this model.
	quieted := func(model core.Model) bool {
		record, ok := model.(*core.Record)
		return ok && chat.IsCollection(record.Collection().Name) && h.pocketBaseServed.Load() == 0
	}
	onModel := func(e *core.ModelEvent) error {
		if !quieted(e.Model) {
			return e.Next()
		}
		return withApp(&e.App, quiet.over(e.App), e.Next)
	}
	handler := &hook.Handler[*core.ModelEvent]{Func: onModel, Priority: broadcastPriority}
	app.OnModelAfterCreateSuccess().Bind(handler)
	app.OnModelAfterUpdateSuccess().Bind(handler)
	app.OnModelAfterDeleteSuccess().Bind(handler)
	app.OnModelDelete().Bind(&hook.Handler[*core.ModelEvent]{Func: onModel, Priority: deleteCachePriority})
	app.OnModelAfterDeleteError().Bind(&hook.Handler[*core.ModelErrorEvent]{
		Func: func(e *core.ModelErrorEvent) error {
			if !quieted(e.Model) {
				return e.Next()
			}
			return withApp(&e.App, quiet.over(e.App), e.Next)
		},
		Priority: broadcastPriority,
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
