package hooks

import (
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
)

type receipts struct{ settings chat.Settings }

// receipt is one member's read position in a room.
type receipt struct {
	User            string `db:"user" json:"user"`
	LastSeenAt      string `db:"last_seen_at" json:"last_seen_at"`
	LastReadMessage string `db:"last_read_message" json:"last_read_message"`
}

// receiptsQuery reads every member's last_seen_at and the newest member's
// message at or before it (system messages are not read, as they are not
// unread; a seek on idx_chat_messages_room_created per member), for a caller
// who is a member: one query, empty for anybody else.
const receiptsQuery = `SELECT ru.user AS user, ru.last_seen_at AS last_seen_at,
	coalesce((SELECT x.id FROM chat_messages x
		WHERE x.room = ru.room AND ru.last_seen_at != '' AND x.created <= ru.last_seen_at AND x.system = ''
		ORDER BY x.created DESC, x.id DESC LIMIT 1), '') AS last_read_message
	FROM chat_room_users ru
	WHERE ru.room = {:room}
	  AND EXISTS (SELECT 1 FROM chat_room_users me WHERE me.room = {:room} AND me.user = {:me})
	ORDER BY ru.last_seen_at DESC, ru.user`

// list serves GET /api/chat/rooms/{id}/receipts: {items: [{user,
// last_seen_at, last_read_message}]} for the room's members; 404 for a room
// the caller is not a member of.
func (h receipts) list(e *core.RequestEvent) error {
	roomID := e.Request.PathValue("id")
	items := []receipt{}
	err := e.App.DB().NewQuery(receiptsQuery).
		Bind(dbx.Params{"room": roomID, "me": authUserID(e, h.settings)}).All(&items)
	if err != nil {
		return serverError(fmt.Errorf("read receipts of room %s: %w", roomID, err))
	}
	if len(items) == 0 {
		return e.NotFoundError("The room does not exist or you are not a member of it.", nil)
	}
	return e.JSON(200, map[string]any{"items": items})
}
