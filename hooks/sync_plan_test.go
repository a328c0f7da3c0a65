package hooks_test

import (
	"strings"
	"testing"

	"github.com/pocketbase/dbx"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chattest"
)

// TestSyncQueryPlans: every sync statement reads the log through its
// indexes: one (room, seq) range per room for the events (seq is the rowid
// every index ends with), never a scan of the whole log.
func TestSyncQueryPlans(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	tests := []struct {
		query string
		want  []string // substrings of the plan, each on some line
	}{
		{"joins", []string{"USING COVERING INDEX idx_pbchat_events_member (member=? AND type=?)"}},
		{"scope", []string{"USING COVERING INDEX idx_pbchat_events_member (member=? AND type=?)"}},
		{"deletions", []string{"USING COVERING INDEX idx_pbchat_events_room_deleted (room=?)"}},
		{"events", []string{
			"SEARCH x USING COVERING INDEX idx_pbchat_events_room (room=? AND rowid>? AND rowid<?)",
			"SEARCH x USING COVERING INDEX idx_pbchat_events_room (room=? AND rowid>?)",
			"SEARCH e USING INTEGER PRIMARY KEY (rowid=?)",
		}},
		{"records", []string{"SEARCH chat_messages USING INDEX sqlite_autoindex_chat_messages_1 (id=?)"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, ok := hooks.SyncQueries[tt.query]
			if tt.query == "records" {
				messages, err := env.App.FindCollectionByNameOrId("chat_messages")
				if err != nil {
					t.Fatal(err)
				}
				q.SQL, ok = hooks.RecordJSONSQL(messages)
				q.Args = []any{`["a","b"]`}
			}
			if !ok {
				t.Fatalf("no %s query", tt.query)
			}
			// The statements take positional arguments (they are prepared
			// once and run on database/sql directly).
			rows, err := env.App.ConcurrentDB().(*dbx.DB).DB().Query("EXPLAIN QUERY PLAN "+q.SQL, q.Args...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			t.Log(text)
			for _, want := range tt.want {
				if !strings.Contains(text, want) {
					t.Errorf("plan lacks %q:\n%s", want, text)
				}
			}
			for _, line := range plan {
				if strings.HasPrefix(line, "SCAN e") || strings.HasPrefix(line, "SCAN x") || strings.HasPrefix(line, "SCAN _pbchat_events") {
					t.Errorf("plan scans the log: %q\n%s", line, text)
				}
			}
		})
	}
}
