package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/pbchat/pbchat/chatmodule"
)

// PocketBase's own commands leave a pbchat app able to start. `migrate
// history-sync` forgets every migration outside PocketBase's global list,
// pbchat's among them (they are per app): on the next start they run again
// and must find their work done, with the data, the operator's settings and
// the clients' sync cursors as they were.
func TestHistorySyncKeepsTheAppStartable(t *testing.T) {
	bin, dir, server, c := startDemoPBChat(t)
	super := c.superuserToken(t)
	// The install turned the batch API on; the operator turned it off since.
	c.must(t, super, http.MethodPatch, "/api/settings", map[string]any{"batch": map[string]any{"enabled": false}}, http.StatusOK)
	alice := c.must(t, "", http.MethodPost, "/api/collections/users/auth-with-password",
		map[string]any{"identity": "alice@example.com", "password": chatmodule.DemoPassword}, http.StatusOK).Str("token")
	rooms := historyRoomIDs(t, c, alice)
	messages := len(c.listAll(t, super, "chat_messages", ""))
	cursor := c.must(t, alice, http.MethodGet, "/api/chat/sync", nil, http.StatusOK).Str("cursor")
	server.stop()

	for _, command := range [][]string{
		{"migrate", "history-sync"},
		{"migrate", "up"},
		{"migrate", "history-sync"}, // twice in a row
		{"superuser", "upsert", "ops@example.com", "password-ops"},
	} {
		t.Run(command[0]+" "+command[1], func(t *testing.T) {
			runPBChat(t, bin, append(command, "--dir", dir)...)
			server := startPBChat(t, bin, dir) // fails the test unless it starts
			defer server.stop()
			c := newPBClient(server.URL)
			super := c.superuserToken(t)
			if got := historyRoomIDs(t, c, alice); !slices.Equal(got, rooms) {
				t.Errorf("alice's rooms %v, want %v", got, rooms)
			}
			if got := len(c.listAll(t, super, "chat_messages", "")); got != messages {
				t.Errorf("%d messages, want %d", got, messages)
			}
			var settings struct {
				Batch struct {
					Enabled bool `json:"enabled"`
				} `json:"batch"`
			}
			if err := json.Unmarshal(c.must(t, super, http.MethodGet, "/api/settings", nil, http.StatusOK).Body, &settings); err != nil {
				t.Fatal(err)
			}
			if settings.Batch.Enabled {
				t.Errorf("the batch API the operator turned off is on again")
			}
			sync := c.must(t, alice, http.MethodGet, "/api/chat/sync?since="+url.QueryEscape(cursor), nil, http.StatusOK).JSON()
			if sync["reset"] == true {
				t.Errorf("a cursor from before the command needs a reset: %v", sync)
			}
		})
	}
}

// historyRoomIDs lists the ids of the user's rooms, sorted.
func historyRoomIDs(t *testing.T, c *pbClient, token string) []string {
	t.Helper()
	var out struct {
		Items []struct {
			Room struct {
				ID string `json:"id"`
			} `json:"room"`
		} `json:"items"`
	}
	if err := json.Unmarshal(c.must(t, token, http.MethodGet, "/api/chat/rooms?perPage=200", nil, http.StatusOK).Body, &out); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, item := range out.Items {
		ids = append(ids, item.Room.ID)
	}
	slices.Sort(ids)
	return ids
}
