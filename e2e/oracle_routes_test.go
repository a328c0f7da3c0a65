package e2e

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

// TestOracleRoutes: the routes and collections of version 2 answer an
// outsider's question about the secret room exactly as they answer the same
// question about a room that does not exist (or with a false guess).
func TestOracleRoutes(t *testing.T) {
	w := newAdvWorld(t)
	s := w.secret.id
	q := url.QueryEscape
	for _, c := range []struct{ name, yes, no string }{
		{"search text", "/api/chat/search?q=" + q("ZQXsecret launch"), "/api/chat/search?q=" + q("ZQXsecret lunch")},
		{"search in room", "/api/chat/search?q=launch&room=" + s, "/api/chat/search?q=launch&room=" + advDecoyID},
		{"threads of room", "/api/chat/threads?room=" + s, "/api/chat/threads?room=" + advDecoyID},
		{"receipts of room", "/api/chat/rooms/" + s + "/receipts", "/api/chat/rooms/" + advDecoyID + "/receipts"},
		{"read a room", "/api/chat/rooms/" + s + "/read", "/api/chat/rooms/" + advDecoyID + "/read"},
		{"presence of a user sharing no room", "/api/chat/presence?users=" + w.alice.ID(), "/api/chat/presence?users=" + advDecoyID},
		{"bans of room", "/api/collections/chat_room_bans/records?filter=" + q("room = '"+s+"'"), "/api/collections/chat_room_bans/records?filter=" + q("room = '"+advDecoyID+"'")},
		{"reports of room", "/api/collections/chat_message_reports/records?filter=" + q("room = '"+s+"'"), "/api/collections/chat_message_reports/records?filter=" + q("room = '"+advDecoyID+"'")},
		{"mentions of the secret room", advMessagesURL + "?filter=" + q("mentions ?= '"+w.alice.ID()+"'"), advMessagesURL + "?filter=" + q("mentions ?= '"+advDecoyID+"'")},
	} {
		for _, a := range w.actors() {
			if a.user == nil || a.user == w.bob {
				continue // bob is in the secret room: the question is his to ask
			}
			method := http.MethodGet
			if c.name == "read a room" {
				method = http.MethodPost
			}
			yes, no := w.do(a.user, method, c.yes, nil), w.do(a.user, method, c.no, nil)
			w.checkLeak(t, a, c.name, c.yes, yes)
			if yes.Status != no.Status || !reflect.DeepEqual(yes.JSON(), no.JSON()) {
				t.Errorf("%s as %s: %d %s\n  differs from %d %s", c.name, a.name, yes.Status, yes, no.Status, no)
			}
		}
	}
}
