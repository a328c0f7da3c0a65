package realtime

import (
	"log/slog"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
)

// A realtime connection's authority ends with its token. When a chat user's
// token key changes (a password or email change, or a host app's "log out
// everywhere") or the user is deleted, the writer publishes a revocation
// that reaches every hub, and each hub disconnects that user's chat
// connections: nothing more is delivered on them. The SDKs reconnect and
// resubscribe with the token they hold then: a fresh one gets everything
// back (and syncs from its cursor), a revoked one is a guest (room topics
// answer 403, stock subscriptions deliver nothing). A subscription planned
// before the revocation and installed after it is refused (removals.go).
//
// PocketBase does the same for what it serves: it clears the auth of such
// connections (apis/realtime.go, realtimeUpdateClientsAuth).

func (h *Hub) bindRevocations(app core.App, settings chat.Settings) {
	app.OnRecordAfterUpdateSuccess(settings.UsersCollection).BindFunc(func(e *core.RecordEvent) error {
		if original := e.Record.Original(); original != nil && original.TokenKey() != e.Record.TokenKey() {
			h.revoke(e.Record.Id)
		}
		return e.Next()
	})
	app.OnRecordAfterDeleteSuccess(settings.UsersCollection).BindFunc(func(e *core.RecordEvent) error {
		h.revoke(e.Record.Id)
		return e.Next()
	})
}

func (h *Hub) revoke(user string) {
	if err := h.Publish(chat.Event{Type: chat.EventAuthRevoked, Users: []string{user}}); err != nil {
		h.logger.Error("pbchat realtime: publish a revocation", slog.String("user", user), slog.Any("error", err))
	}
}
