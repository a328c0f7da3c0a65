package chatmodule

import (
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/realtime"
)

// bindPresence keeps who is online on the writer: its own hub reports in
// process, realtime nodes over NATS. Changes become last_online rows and
// presence.* events (hooks.Presence) while the app serves; at shutdown the
// users still online get now as their last_online.
func bindPresence(app core.App, settings chat.Settings, hub *realtime.Hub, broker realtime.Broker) error {
	table := realtime.NewPresence(settings.NATS.PresenceExpiry(), app.Logger())
	hub.ReportPresence(table.Local())
	if nb, ok := broker.(*realtime.NATSBroker); ok {
		if err := nb.ServePresence(table); err != nil {
			return err
		}
	}
	presence := hooks.BindPresence(app, settings, table, func(event chat.Event) {
		if err := hub.Publish(event); err != nil {
			app.Logger().Error("pbchat presence: publish", "type", event.Type, "error", err)
		}
	})
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		table.Start(func(c realtime.PresenceChange) { presence.Changed(c.User, c.Online, c.At) })
		return se.Next()
	})
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		table.Close()
		presence.Stopped()
		return e.Next()
	})
	return nil
}
