package hooks_test

import (
	"strings"
	"testing"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chattest"
)

// TestSearchQueryPlans: a search walks the full-text index in its own
// order (newest first, no sort of every match) and reads each row's number,
// membership and message by key; a scan of short words walks the numbers
// newest first. Nothing reads the whole messages table.
func TestSearchQueryPlans(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	tests := []struct {
		name  string
		room  string
		terms []string
		want  []string // substrings of the plan, each on some line
	}{
		{"index", "", []string{"weekend"}, []string{
			"SCAN s VIRTUAL TABLE INDEX",
			"SEARCH i USING INTEGER PRIMARY KEY (rowid=?)",
			"SEARCH m USING INDEX sqlite_autoindex_chat_messages_1 (id=?)",
		}},
		{"index, one room", "r1", []string{"weekend", "trip"}, []string{
			"SCAN s VIRTUAL TABLE INDEX",
			"SEARCH i USING INTEGER PRIMARY KEY (rowid=?)",
		}},
		{"short words", "", []string{"fo"}, []string{
			"SCAN i",
			"SEARCH m USING INDEX sqlite_autoindex_chat_messages_1 (id=?)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql, params := hooks.SearchQuery(tt.room, tt.terms)
			var rows []struct {
				Detail string `db:"detail"`
			}
			if err := env.App.DB().NewQuery("EXPLAIN QUERY PLAN " + sql).Bind(params).All(&rows); err != nil {
				t.Fatal(err)
			}
			var plan []string
			for _, r := range rows {
				plan = append(plan, r.Detail)
			}
			text := strings.Join(plan, "\n")
			t.Log(text)
			for _, want := range tt.want {
				if !strings.Contains(text, want) {
					t.Errorf("plan lacks %q:\n%s", want, text)
				}
			}
			for _, line := range plan {
				if strings.Contains(line, "TEMP B-TREE FOR ORDER BY") || strings.HasPrefix(line, "SCAN m") {
					t.Errorf("plan sorts the matches or scans the messages: %q\n%s", line, text)
				}
			}
		})
	}
}
