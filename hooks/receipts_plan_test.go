package hooks_test

import (
	"strings"
	"testing"

	"github.com/pocketbase/dbx"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chattest"
)

// TestReceiptsQueryPlan: the receipts of a room are one query that reads the
// room's memberships by index and, per member, seeks the newest message at
// or before their mark in (room, created), never scanning chat_messages.
func TestReceiptsQueryPlan(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	var rows []struct {
		Detail string `db:"detail"`
	}
	err := env.App.DB().NewQuery("EXPLAIN QUERY PLAN " + hooks.ReceiptsQuery).
		Bind(dbx.Params{"room": "r", "me": "u"}).All(&rows)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for _, r := range rows {
		plan = append(plan, r.Detail)
	}
	text := strings.Join(plan, "\n")
	t.Log(text)
	if !strings.Contains(text, "idx_chat_messages_room_created (room=? AND created<?)") {
		t.Errorf("the last read message is not a seek on (room, created):\n%s", text)
	}
	for _, line := range plan {
		if strings.HasPrefix(line, "SCAN x") || strings.HasPrefix(line, "SCAN chat_messages") || strings.HasPrefix(line, "SCAN ru") {
			t.Errorf("plan scans a table: %q\n%s", line, text)
		}
	}
}
