package e2e

// Adversarial access through the HTTP API. Four attackers and a guest try
// to read and write where they do not belong:
//
//   - mallory, an outsider: a signed-in user in no room;
//   - carol, a member of another room (her own private group);
//   - bob, a member of the secret group who lacks most permissions (and a
//     reader without any permission in a channel);
//   - eve, a former member of the secret group whose membership was deleted
//     and who keeps her token, her upload and her old message id.
//
// Every room's content carries a marker (ZQXsecret, ZQXdm, ZQXcarol,
// ZQXlobby, ZQXnews). An attempt passes when it is refused or answers
// nothing the attacker may not see: no marker of a room they are not in, no
// id of a record of such a room, nothing written. Oracles are tested by
// asking the same question with a true and a false value: the two answers
// must be the same.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

const (
	advRoomsURL     = "/api/collections/chat_rooms/records"
	advMembersURL   = "/api/collections/chat_room_users/records"
	advMessagesURL  = "/api/collections/chat_messages/records"
	advMediaURL     = "/api/collections/chat_media/records"
	advLinksURL     = "/api/collections/chat_message_media/records"
	advReactionsURL = "/api/collections/chat_message_reactions/records"
	advUsersURL     = "/api/collections/users/records"

	// Ids that name no record, in PocketBase's id format.
	advDecoyID  = "zzzzzzzzzzzzzz0"
	advDecoyID2 = "zzzzzzzzzzzzzz1"
)

var advAllPermissions = []string{
	"can_add_users", "can_remove_users", "can_create_messages", "can_delete_messages",
	"can_delete_own_messages", "can_edit_messages", "can_edit_own_messages", "can_edit_room", "can_delete_room",
}

// advConfig is the default Config with rate limits out of the way: these
// tests send hundreds of refused writes per user, and a 429 would hide the
// answer under test. Rate limits have their own tests (chatmodule).
var advConfig = chatmodule.Config{RateLimits: chatmodule.RateLimits{Disabled: true}}

// advRoom is one room of the world and what it holds.
type advRoom struct {
	id, marker string
	ids        []string // its messages, memberships, reactions and attachment links
	media      []string // media attached to its messages
}

type advWorld struct {
	env *chattest.Env
	t   *testing.T

	alice, bob, carol, eve, mallory, lena, super *chattest.User

	secret, dm, carolRoom, lobby, lobby2, news, eveRoom *advRoom

	secretMsg   string // alice's, with aliceMedia attached
	bobMsg      string // bob's, in secret
	eveMsg      string // eve's, in secret, with eveMedia attached
	carolMsg    string
	aliceMedia  string
	aliceFile   string
	eveMedia    string
	eveFile     string
	bobReaction string // on secretMsg
	aliceReact  string // on bobMsg
	aliceMember string // alice's membership of secret
	bobMember   string // bob's membership of secret
	bobNews     string // bob's reader membership of news
	secretLink  string // the chat_message_media row of secretMsg
}

// advActor is an attacker and the rooms whose content they may not see.
type advActor struct {
	name      string
	user      *chattest.User // nil: guest
	forbidden []*advRoom
}

// newAdvWorld builds the rooms through the API, as their members would.
func newAdvWorld(t *testing.T) *advWorld {
	t.Helper()
	env := chattest.NewWithSetup(t, advConfig, func(app core.App) error {
		// As in the ready app (app_migrations.go): signed-in users see each
		// other, which opens users' back-relations to filters and expands.
		users, err := app.FindCollectionByNameOrId("users")
		if err != nil {
			return err
		}
		users.ListRule = types.Pointer(`@request.auth.id != ""`)
		users.ViewRule = types.Pointer(`@request.auth.id != ""`)
		return app.Save(users)
	})
	w := &advWorld{env: env, t: t,
		alice: env.NewUser("alice"), bob: env.NewUser("bob"), carol: env.NewUser("carol"),
		eve: env.NewUser("eve"), mallory: env.NewUser("mallory"), lena: env.NewUser("lena"),
	}
	w.super = env.Superuser()

	w.secret = &advRoom{marker: "ZQXsecret"}
	w.dm = &advRoom{marker: "ZQXdm"}
	w.carolRoom = &advRoom{marker: "ZQXcarol"}
	w.lobby = &advRoom{marker: "ZQXlobby"}
	w.lobby2 = &advRoom{marker: "ZQXlobby"}
	w.news = &advRoom{marker: "ZQXnews"}
	w.eveRoom = &advRoom{marker: "ZQXeve"}

	// The secret group: alice (creator), bob with the group's member
	// defaults, eve (removed below).
	w.secret.id = w.ok(w.alice, http.MethodPost, advRoomsURL, map[string]any{
		"type": "group", "name": "ZQXsecret plans", "description": "ZQXsecret description"}).Str("id")
	w.aliceMember = w.membershipID(w.secret.id, w.alice)
	w.bobMember = w.ok(w.alice, http.MethodPost, advMembersURL, map[string]any{"room": w.secret.id, "user": w.bob.ID()}).Str("id")
	eveMember := w.ok(w.alice, http.MethodPost, advMembersURL, map[string]any{"room": w.secret.id, "user": w.eve.ID()}).Str("id")
	w.secret.ids = append(w.secret.ids, w.aliceMember, w.bobMember)

	w.aliceMedia, w.aliceFile = w.upload(w.alice)
	msg := w.ok(w.alice, http.MethodPost, advMessagesURL, map[string]any{"room": w.secret.id, "text": "ZQXsecret the launch code", "media": []string{w.aliceMedia}})
	w.secretMsg = msg.Str("id")
	w.secretLink = w.linkOf(w.secretMsg)
	w.bobMsg = w.ok(w.bob, http.MethodPost, advMessagesURL, map[string]any{"room": w.secret.id, "text": "ZQXsecret bob agrees"}).Str("id")
	w.bobReaction = w.ok(w.bob, http.MethodPost, advReactionsURL, map[string]any{"message": w.secretMsg, "reaction": "👍"}).Str("id")
	w.aliceReact = w.ok(w.alice, http.MethodPost, advReactionsURL, map[string]any{"message": w.bobMsg, "reaction": "🎉"}).Str("id")
	w.eveMedia, w.eveFile = w.upload(w.eve)
	w.eveMsg = w.ok(w.eve, http.MethodPost, advMessagesURL, map[string]any{"room": w.secret.id, "text": "ZQXsecret eve was here", "media": []string{w.eveMedia}}).Str("id")
	eveReaction := w.ok(w.eve, http.MethodPost, advReactionsURL, map[string]any{"message": w.secretMsg, "reaction": "😮"}).Str("id")
	w.secret.ids = append(w.secret.ids, w.secretMsg, w.secretLink, w.bobMsg, w.bobReaction, w.aliceReact, w.eveMsg, w.linkOf(w.eveMsg), eveReaction)
	w.secret.media = []string{w.aliceMedia, w.eveMedia}

	// Alice's private room with bob.
	w.dm.id = w.status(w.alice, http.MethodPost, "/api/chat/private", map[string]any{"user": w.bob.ID()}, http.StatusCreated).Str("id")
	w.dm.ids = append(w.dm.ids, w.membershipID(w.dm.id, w.alice), w.membershipID(w.dm.id, w.bob),
		w.ok(w.alice, http.MethodPost, advMessagesURL, map[string]any{"room": w.dm.id, "text": "ZQXdm just us"}).Str("id"))

	// Carol's own private group.
	w.carolRoom.id = w.ok(w.carol, http.MethodPost, advRoomsURL, map[string]any{"type": "group", "name": "ZQXcarol corner"}).Str("id")
	w.carolMsg = w.ok(w.carol, http.MethodPost, advMessagesURL, map[string]any{"room": w.carolRoom.id, "text": "ZQXcarol note to self"}).Str("id")
	w.carolRoom.ids = append(w.carolRoom.ids, w.membershipID(w.carolRoom.id, w.carol), w.carolMsg,
		w.ok(w.carol, http.MethodPost, advReactionsURL, map[string]any{"message": w.carolMsg, "reaction": "✅"}).Str("id"))

	// A public group and a public channel: their records are for everyone,
	// their content for members. Bob reads the channel without permissions.
	w.lobby.id = w.ok(w.alice, http.MethodPost, advRoomsURL, map[string]any{"type": "group", "name": "Lobby", "is_public": true}).Str("id")
	w.lobby.ids = append(w.lobby.ids, w.membershipID(w.lobby.id, w.alice),
		w.ok(w.alice, http.MethodPost, advMessagesURL, map[string]any{"room": w.lobby.id, "text": "ZQXlobby aaa first"}).Str("id"))
	w.lobby2.id = w.ok(w.alice, http.MethodPost, advRoomsURL, map[string]any{"type": "group", "name": "Lobby two", "is_public": true}).Str("id")
	w.lobby2.ids = append(w.lobby2.ids, w.membershipID(w.lobby2.id, w.alice),
		w.ok(w.alice, http.MethodPost, advMessagesURL, map[string]any{"room": w.lobby2.id, "text": "ZQXlobby zzz second"}).Str("id"))
	// Lena joins the first lobby herself: a member of it alone.
	w.lobby.ids = append(w.lobby.ids, w.ok(w.lena, http.MethodPost, advMembersURL, map[string]any{"room": w.lobby.id, "user": w.lena.ID()}).Str("id"))
	w.news.id = w.ok(w.alice, http.MethodPost, advRoomsURL, map[string]any{"type": "channel", "name": "News", "is_public": true}).Str("id")
	w.bobNews = w.ok(w.alice, http.MethodPost, advMembersURL, map[string]any{"room": w.news.id, "user": w.bob.ID(), "permissions": []string{}}).Str("id")
	w.news.ids = append(w.news.ids, w.membershipID(w.news.id, w.alice), w.bobNews,
		w.ok(w.alice, http.MethodPost, advMessagesURL, map[string]any{"room": w.news.id, "text": "ZQXnews zzz last"}).Str("id"))

	// Eve's own room, then her removal from the secret group.
	w.eveRoom.id = w.ok(w.eve, http.MethodPost, advRoomsURL, map[string]any{"type": "group", "name": "ZQXeve den"}).Str("id")
	w.status(w.alice, http.MethodDelete, advMembersURL+"/"+eveMember, nil, http.StatusNoContent)
	w.secret.ids = append(w.secret.ids, eveMember) // gone: must stay unknown to everybody

	// Alice's media that no message uses: hers alone.
	orphan, _ := w.upload(w.alice)
	w.secret.media = append(w.secret.media, orphan)
	return w
}

// actors are the attackers of the read tests.
func (w *advWorld) actors() []advActor {
	all := []*advRoom{w.secret, w.dm, w.carolRoom, w.lobby, w.lobby2, w.news, w.eveRoom}
	return []advActor{
		{name: "guest", forbidden: all},
		{name: "outsider", user: w.mallory, forbidden: all},
		{name: "member of another room", user: w.carol, forbidden: []*advRoom{w.secret, w.dm, w.lobby, w.lobby2, w.news, w.eveRoom}},
		{name: "member lacking permissions", user: w.bob, forbidden: []*advRoom{w.carolRoom, w.lobby, w.lobby2, w.eveRoom}},
		{name: "former member", user: w.eve, forbidden: []*advRoom{w.secret, w.dm, w.carolRoom, w.lobby, w.lobby2, w.news}},
	}
}

// forbiddenMedia is the media an actor may not see: attached in a room they
// are not in, and not their own upload.
func (w *advWorld) forbiddenMedia(a advActor) []string {
	var out []string
	for _, r := range a.forbidden {
		for _, m := range r.media {
			if a.user == w.eve && m == w.eveMedia {
				continue // her own upload stays hers
			}
			out = append(out, m)
		}
	}
	return out
}

func (w *advWorld) do(u *chattest.User, method, path string, body any) *chattest.Response {
	w.t.Helper()
	return w.env.Do(u, method, path, body)
}

func (w *advWorld) status(u *chattest.User, method, path string, body any, want int) *chattest.Response {
	w.t.Helper()
	res := w.do(u, method, path, body)
	if res.Status != want {
		w.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.Status, want, res)
	}
	return res
}

func (w *advWorld) ok(u *chattest.User, method, path string, body any) *chattest.Response {
	w.t.Helper()
	return w.status(u, method, path, body, http.StatusOK)
}

func (w *advWorld) upload(u *chattest.User) (id, file string) {
	w.t.Helper()
	res := w.env.Upload(u, http.MethodPost, advMediaURL, nil, chattest.File{Field: "file", Name: "secret.png", Content: chattest.PNG(4, 4)})
	if res.Status != http.StatusOK {
		w.t.Fatalf("upload: %d %s", res.Status, res)
	}
	return res.Str("id"), res.Str("file")
}

func (w *advWorld) membershipID(room string, u *chattest.User) string {
	w.t.Helper()
	r, err := w.env.App.FindFirstRecordByFilter("chat_room_users", "room = {:r} && user = {:u}", dbx.Params{"r": room, "u": u.ID()})
	if err != nil {
		w.t.Fatalf("membership of %s in %s: %v", u.ID(), room, err)
	}
	return r.Id
}

func (w *advWorld) linkOf(message string) string {
	w.t.Helper()
	r, err := w.env.App.FindFirstRecordByFilter("chat_message_media", "message = {:m}", dbx.Params{"m": message})
	if err != nil {
		w.t.Fatalf("link of %s: %v", message, err)
	}
	return r.Id
}

func (w *advWorld) fileToken(u *chattest.User) string {
	w.t.Helper()
	return w.ok(u, http.MethodPost, "/api/files/token", nil).Str("token")
}

// snapshot is every chat row (and every stored file), to prove that refused
// requests wrote nothing.
func (w *advWorld) snapshot() string {
	w.t.Helper()
	var b strings.Builder
	for _, c := range []string{"chat_rooms", "chat_room_users", "chat_messages", "chat_media", "chat_message_media", "chat_message_reactions"} {
		var rows []dbx.NullStringMap
		if err := w.env.App.DB().Select("*").From(c).OrderBy("id").All(&rows); err != nil {
			w.t.Fatal(err)
		}
		for _, row := range rows {
			keys := make([]string, 0, len(row))
			for k := range row {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			fmt.Fprintf(&b, "%s:", c)
			for _, k := range keys {
				fmt.Fprintf(&b, " %s=%s", k, row[k].String)
			}
			b.WriteByte('\n')
		}
	}
	fsys, err := w.env.App.NewFilesystem()
	if err != nil {
		w.t.Fatal(err)
	}
	defer fsys.Close()
	files, err := fsys.List("")
	if err != nil {
		w.t.Fatal(err)
	}
	for _, f := range files {
		fmt.Fprintf(&b, "file %s %d\n", f.Key, f.Size)
	}
	return b.String()
}

// checkLeak fails when res holds anything of a forbidden room: a marker,
// the id of one of its records (other than ids the request itself named),
// or a forbidden media id. It also fails on a 5xx.
func (w *advWorld) checkLeak(t *testing.T, a advActor, what, request string, res *chattest.Response) {
	t.Helper()
	if res.Status >= 500 {
		t.Errorf("%s as %s: server error %d: %s", what, a.name, res.Status, res)
		return
	}
	body := res.String()
	for _, r := range a.forbidden {
		if strings.Contains(body, r.marker) {
			t.Errorf("%s as %s: the answer (%d) holds %s content: %s", what, a.name, res.Status, r.marker, body)
		}
		for _, id := range r.ids {
			if strings.Contains(body, id) && !strings.Contains(request, id) {
				t.Errorf("%s as %s: the answer (%d) holds record %s of %s: %s", what, a.name, res.Status, id, r.marker, body)
			}
		}
	}
	for _, id := range w.forbiddenMedia(a) {
		if strings.Contains(body, id) && !strings.Contains(request, id) {
			t.Errorf("%s as %s: the answer (%d) holds media %s: %s", what, a.name, res.Status, id, body)
		}
	}
}

func advQ(params ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		v.Set(params[i], params[i+1])
	}
	return "?" + v.Encode()
}

// TestAdversarialReads: lists, views, filters, sorts and expands that cross
// relations, by every attacker. Nothing of a room they are not in comes back.
func TestAdversarialReads(t *testing.T) {
	w := newAdvWorld(t)
	before := w.snapshot()
	s, alice := w.secret.id, w.alice.ID()

	reads := []string{
		// Plain lists and views of everything.
		advRoomsURL, advMembersURL, advMessagesURL, advMediaURL, advLinksURL, advReactionsURL,
		advRoomsURL + "/" + s, advRoomsURL + "/" + w.dm.id, advRoomsURL + "/" + w.carolRoom.id,
		advMessagesURL + "/" + w.secretMsg, advMessagesURL + "/" + w.eveMsg, advMessagesURL + "/" + w.carolMsg,
		advMembersURL + "/" + w.aliceMember, advMembersURL + "/" + w.bobMember,
		advReactionsURL + "/" + w.bobReaction, advLinksURL + "/" + w.secretLink,
		advMediaURL + "/" + w.aliceMedia,

		// Filters through relations and back-relations.
		advMessagesURL + advQ("filter", "room = '"+s+"'"),
		advMessagesURL + advQ("filter", "room.name ~ 'ZQX'"),
		advMessagesURL + advQ("filter", "room.chat_room_users_via_room.user ?= '"+alice+"'"),
		advMessagesURL + advQ("filter", "text ~ 'ZQX' || room.is_public = true"),
		advMessagesURL + advQ("filter", "user = '"+alice+"'"),
		advMessagesURL + advQ("filter", "chat_message_media_via_message.media.uploaded_by ?= '"+alice+"'"),
		advMessagesURL + advQ("filter", "room.is_public = true"),
		advRoomsURL + advQ("filter", "chat_room_users_via_room.user ?= '"+alice+"'"),
		advRoomsURL + advQ("filter", "name ~ 'ZQX' || description ~ 'ZQX'"),
		advRoomsURL + advQ("filter", "chat_messages_via_room.text ?~ 'ZQX'"),
		advRoomsURL + advQ("filter", "id = '"+s+"' || id = '"+w.dm.id+"'"),
		advMembersURL + advQ("filter", "room = '"+s+"'"),
		advMembersURL + advQ("filter", "room.name ~ 'ZQX' || room.is_public = true"),
		advMembersURL + advQ("filter", "user = '"+alice+"'"),
		advReactionsURL + advQ("filter", "message.room = '"+s+"'"),
		advReactionsURL + advQ("filter", "message.text ~ 'ZQX'"),
		advMediaURL + advQ("filter", "chat_message_media_via_media.message.room = '"+s+"'"),
		advMediaURL + advQ("filter", "uploaded_by = '"+alice+"'"),
		advLinksURL + advQ("filter", "message.room = '"+s+"'"),
		advUsersURL + advQ("filter", "chat_room_users_via_user.room ?= '"+s+"'"),
		advUsersURL + advQ("filter", "chat_messages_via_user.text ?~ 'ZQX'"),

		// @collection joins.
		advMessagesURL + advQ("filter", "@collection.chat_messages.room ?= '"+s+"'"),
		advRoomsURL + advQ("filter", "@collection.chat_room_users.room ?= id && @collection.chat_room_users.user ?= '"+alice+"'"),
		advMembersURL + advQ("filter", "@collection.chat_rooms.name ?~ 'ZQX'"),
		advMediaURL + advQ("filter", "@collection.chat_message_media.media ?= id"),
		advUsersURL + advQ("filter", "@collection.chat_room_users:m.user ?= id && @collection.chat_room_users:m.room ?= '"+s+"'"),

		// Expands across relations and back-relations.
		advRoomsURL + advQ("expand", "chat_messages_via_room,chat_room_users_via_room,created_by"),
		advRoomsURL + advQ("expand", "chat_messages_via_room.chat_message_media_via_message.media,chat_messages_via_room.chat_message_reactions_via_message"),
		advRoomsURL + "/" + w.lobby.id + advQ("expand", "chat_messages_via_room,chat_room_users_via_room.user"),
		advRoomsURL + "/" + w.news.id + advQ("expand", "chat_messages_via_room,chat_room_users_via_room"),
		advReactionsURL + advQ("expand", "message.room,message.user,message.chat_message_media_via_message.media"),
		advMediaURL + advQ("expand", "chat_message_media_via_media.message.room,chat_message_media_via_media.message.chat_message_reactions_via_message"),
		advMediaURL + "/" + w.eveMedia + advQ("expand", "chat_message_media_via_media.message,chat_message_media_via_media.message.room"),
		advMembersURL + advQ("expand", "room,room.chat_messages_via_room,user"),
		advMessagesURL + advQ("expand", "room.chat_room_users_via_room,chat_message_media_via_message.media"),
		advUsersURL + advQ("expand", "chat_room_users_via_user.room,chat_messages_via_user,chat_media_via_uploaded_by"),
		advUsersURL + "/" + alice + advQ("expand", "chat_room_users_via_user.room.chat_messages_via_room,chat_messages_via_user.room"),
		advRoomsURL + advQ("expand", "chat_messages_via_room", "fields", "id,name,expand.chat_messages_via_room.text"),

		// Sorts by what cannot be seen.
		advRoomsURL + advQ("sort", "chat_messages_via_room.text,-name"),
		advMessagesURL + advQ("sort", "room.name,-chat_message_reactions_via_message.reaction"),
		advMembersURL + advQ("sort", "-room.chat_messages_via_room.created"),
		advMediaURL + advQ("sort", "chat_message_media_via_media.message.text"),

		// pbchat's own routes.
		"/api/chat/rooms", "/api/chat/rooms" + advQ("perPage", "500", "page", "1"), "/api/chat/unread",
	}
	for _, a := range w.actors() {
		for _, path := range reads {
			res := w.do(a.user, http.MethodGet, path, nil)
			w.checkLeak(t, a, "GET "+path, path, res)
		}
	}

	// A former member keeps her own upload, never what it was attached to.
	res := w.ok(w.eve, http.MethodGet, advMediaURL+"/"+w.eveMedia+advQ("expand", "chat_message_media_via_media.message"), nil)
	if exp, _ := res.JSON()["expand"].(map[string]any); len(exp) > 0 {
		t.Errorf("eve's upload expands to %v after her removal", exp)
	}

	if after := w.snapshot(); after != before {
		t.Fatalf("reads changed data:\n%s\n---\n%s", before, after)
	}
}

// TestAdversarialOracles asks yes/no questions about hidden data through
// filters and sorts on records the attacker may see: the answers to a true
// and a false question must be the same.
func TestAdversarialOracles(t *testing.T) {
	w := newAdvWorld(t)
	// Every attacker can see something to filter: their own upload, their
	// own memberships, the public rooms, the users.
	for _, u := range []*chattest.User{w.mallory, w.carol, w.bob} {
		w.upload(u)
	}

	type oracle struct {
		name, template string // template holds {X}
		yes, no        string
		notFor         []*chattest.User // actors for whom the question is about their own rooms
	}
	s := w.secret.id
	lobbies := "(id = '" + w.lobby.id + "' || id = '" + w.lobby2.id + "')"
	bob := []*chattest.User{w.bob}
	oracles := []oracle{
		{"secret message text via @collection", advMediaURL + "?filter=" + url.QueryEscape("@collection.chat_messages.text ?~ '{X}'"), "ZQXsecret", "ZQXnothing", bob},
		{"secret message text via @collection (all-match)", advMediaURL + "?filter=" + url.QueryEscape("@collection.chat_messages.text ~ '{X}'"), "ZQX", "QQQ", bob},
		{"secret message via aliased @collection", advMediaURL + "?filter=" + url.QueryEscape("@collection.chat_messages:m.room ?= '"+s+"' && @collection.chat_messages:m.text ?~ '{X}'"), "launch", "nothing", bob},
		{"membership of the secret room via @collection", advMembersURL + "?filter=" + url.QueryEscape("@collection.chat_room_users.room ?= '{X}'"), s, advDecoyID, bob},
		{"who is in the secret room (users back-relation)", advUsersURL + "?filter=" + url.QueryEscape("chat_room_users_via_user.room ?= '{X}'"), s, advDecoyID, bob},
		{"who wrote the secret (users back-relation)", advUsersURL + "?filter=" + url.QueryEscape("chat_messages_via_user.text ?~ '{X}'"), "ZQXsecret", "ZQXnothing", bob},
		{"who wrote the secret (all-match)", advUsersURL + "?filter=" + url.QueryEscape("chat_messages_via_user.text ~ '{X}'"), "ZQXsecret", "QQQ", bob},
		{"who uploaded the secret media", advUsersURL + "?filter=" + url.QueryEscape("chat_media_via_uploaded_by.id ?= '{X}'"), w.aliceMedia, advDecoyID, bob},
		{"who is in the public room (users back-relation)", advUsersURL + "?filter=" + url.QueryEscape("chat_room_users_via_user.room ?= '{X}'"), w.lobby.id, advDecoyID, nil},
		{"public room content", advRoomsURL + "?filter=" + url.QueryEscape("chat_messages_via_room.text ?~ '{X}'"), "ZQXlobby", "ZQXnothing", nil},
		{"public room content (all-match)", advRoomsURL + "?filter=" + url.QueryEscape("chat_messages_via_room.text ~ '{X}'"), "ZQXlobby", "QQQ", nil},
		{"public room membership", advRoomsURL + "?filter=" + url.QueryEscape("chat_room_users_via_room.user ?= '{X}'"), w.lena.ID(), advDecoyID, nil},
		{"public room membership (all-match)", advRoomsURL + "?filter=" + url.QueryEscape(lobbies+" && chat_room_users_via_room.user = '{X}'"), w.alice.ID(), advDecoyID, nil},
		{"public room membership (negated)", advRoomsURL + "?filter=" + url.QueryEscape(lobbies+" && chat_room_users_via_room.user ?!= '{X}'"), w.lena.ID(), advDecoyID, nil},
		{"public room message count", advRoomsURL + "?filter=" + url.QueryEscape(lobbies+" && chat_messages_via_room:length {X} 0"), ">", "<", nil},
		{"public room member count", advRoomsURL + "?filter=" + url.QueryEscape(lobbies+" && chat_room_users_via_room:length {X} 1"), ">", "<", nil},
		{"secret room name via relation", advMembersURL + "?filter=" + url.QueryEscape("room.name ~ '{X}' || id != ''"), "ZQXsecret", "ZQXnothing", bob},
		{"sort by hidden text", advRoomsURL + "?filter=" + url.QueryEscape(lobbies) + "&sort={X}chat_messages_via_room.text", "", "-", nil},
		{"sort by hidden membership", advRoomsURL + "?filter=" + url.QueryEscape(lobbies) + "&sort={X}chat_room_users_via_room.created", "", "-", nil},
		{"sort by hidden member count", advRoomsURL + "?filter=" + url.QueryEscape(lobbies) + "&sort={X}chat_room_users_via_room:length", "", "-", nil},
		{"sort users by hidden messages", advUsersURL + "?filter=" + url.QueryEscape("id = '"+w.alice.ID()+"' || id = '"+w.lena.ID()+"'") + "&sort={X}chat_messages_via_user.text", "", "-", bob},
	}
	ids := func(res *chattest.Response) string {
		var out []string
		for _, it := range res.Items() {
			id, _ := it["id"].(string)
			out = append(out, id)
		}
		return fmt.Sprint(res.Status, out)
	}
	for _, a := range w.actors() {
		if a.user == nil {
			continue // a guest sees no records to ask about
		}
		for _, o := range oracles {
			yes := strings.ReplaceAll(o.template, "{X}", url.QueryEscape(o.yes))
			no := strings.ReplaceAll(o.template, "{X}", url.QueryEscape(o.no))
			ry, rn := w.do(a.user, http.MethodGet, yes, nil), w.do(a.user, http.MethodGet, no, nil)
			w.checkLeak(t, a, o.name, yes, ry)
			w.checkLeak(t, a, o.name, no, rn)
			// A question about a room the actor is in may be answered.
			if slices.Contains(o.notFor, a.user) {
				continue
			}
			if ids(ry) != ids(rn) {
				t.Errorf("%s as %s: oracle answers differently:\n  %s → %s\n  %s → %s", o.name, a.name, o.yes, ids(ry), o.no, ids(rn))
			}
		}
	}
}

// TestAdversarialGuessedIDs: every record of a room an attacker is not in
// answers exactly as an id that does not exist, whatever the method, so a
// guessed id tells nothing; creates that name them are refused the same way.
func TestAdversarialGuessedIDs(t *testing.T) {
	w := newAdvWorld(t)
	before := w.snapshot()
	normalize := func(res *chattest.Response, id string) string {
		return fmt.Sprint(res.Status, " ", strings.ReplaceAll(res.String(), id, "<ID>"))
	}
	same := func(t *testing.T, a advActor, what string, probe func(id string) *chattest.Response, real string) {
		t.Helper()
		got, decoy := probe(real), probe(advDecoyID)
		w.checkLeak(t, a, what, real, got)
		if got.Status < 400 {
			t.Errorf("%s as %s on a hidden record: accepted (%d): %s", what, a.name, got.Status, got)
		}
		if normalize(got, real) != normalize(decoy, advDecoyID) {
			t.Errorf("%s as %s: a hidden record answers unlike a missing one:\n  hidden:  %s\n  missing: %s", what, a.name, normalize(got, real), normalize(decoy, advDecoyID))
		}
	}

	byCollection := map[string][]string{
		advRoomsURL:     {w.secret.id, w.dm.id, w.carolRoom.id},
		advMessagesURL:  {w.secretMsg, w.eveMsg, w.carolMsg},
		advMembersURL:   {w.aliceMember, w.bobMember},
		advReactionsURL: {w.bobReaction},
		advLinksURL:     {w.secretLink},
	}
	for _, a := range w.actors() {
		if a.user == w.bob {
			continue // bob is in the secret room; his refusals are 403s (TestAdversarialMemberLacksPermission)
		}
		for base, records := range byCollection {
			for _, id := range records {
				if a.user == w.carol && id == w.carolRoom.id || a.user == w.carol && id == w.carolMsg {
					continue
				}
				same(t, a, "GET "+base, func(x string) *chattest.Response { return w.do(a.user, http.MethodGet, base+"/"+x, nil) }, id)
				same(t, a, "GET expand "+base, func(x string) *chattest.Response {
					return w.do(a.user, http.MethodGet, base+"/"+x+"?expand=room,message,user", nil)
				}, id)
				same(t, a, "PATCH "+base, func(x string) *chattest.Response {
					return w.do(a.user, http.MethodPatch, base+"/"+x, map[string]any{"name": "pwned", "text": "pwned", "permissions": advAllPermissions})
				}, id)
				same(t, a, "DELETE "+base, func(x string) *chattest.Response { return w.do(a.user, http.MethodDelete, base+"/"+x, nil) }, id)
			}
		}
		if a.user == nil {
			continue // guests are refused before any id is looked at
		}
		// Creates that name a hidden room, message or upload.
		for _, room := range []string{w.secret.id, w.dm.id} {
			same(t, a, "post to a hidden room", func(x string) *chattest.Response {
				return w.do(a.user, http.MethodPost, advMessagesURL, map[string]any{"room": x, "text": "hi"})
			}, room)
			same(t, a, "join a hidden room", func(x string) *chattest.Response {
				return w.do(a.user, http.MethodPost, advMembersURL, map[string]any{"room": x, "user": a.user.ID()})
			}, room)
			same(t, a, "add someone to a hidden room", func(x string) *chattest.Response {
				return w.do(a.user, http.MethodPost, advMembersURL, map[string]any{"room": x, "user": w.mallory.ID(), "permissions": []string{}})
			}, room)
			same(t, a, "mark a hidden room read", func(x string) *chattest.Response {
				return w.do(a.user, http.MethodPost, "/api/chat/rooms/"+x+"/read", nil)
			}, room)
			same(t, a, "type in a hidden room", func(x string) *chattest.Response {
				return w.do(a.user, http.MethodPost, "/api/chat/rooms/"+x+"/typing", nil)
			}, room)
		}
		same(t, a, "react to a hidden message", func(x string) *chattest.Response {
			return w.do(a.user, http.MethodPost, advReactionsURL, map[string]any{"message": x, "reaction": "👍"})
		}, w.secretMsg)
		own := w.ok(a.user, http.MethodPost, advRoomsURL, map[string]any{"type": "group", "name": "mine"}).Str("id")
		same(t, a, "attach someone else's upload", func(x string) *chattest.Response {
			return w.do(a.user, http.MethodPost, advMessagesURL, map[string]any{"room": own, "text": "look", "media": []string{x}})
		}, w.aliceMedia)
		w.status(w.super, http.MethodDelete, advRoomsURL+"/"+own, nil, http.StatusNoContent)
	}
	if after := w.snapshot(); after != before {
		t.Fatalf("refused requests changed data:\n%s\n---\n%s", before, after)
	}
}

// TestAdversarialFiles: protected media downloads need a file token of a
// user who may see the media.
func TestAdversarialFiles(t *testing.T) {
	w := newAdvWorld(t)
	file := func(id, name string) string { return "/api/files/chat_media/" + id + "/" + name }
	aliceFile := file(w.aliceMedia, w.aliceFile)
	mediaCollection, err := w.env.App.FindCollectionByNameOrId("chat_media")
	if err != nil {
		t.Fatal(err)
	}
	byCollectionID := "/api/files/" + mediaCollection.Id + "/" + w.aliceMedia + "/" + w.aliceFile

	download := func(u *chattest.User, path string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, w.env.Server.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if u != nil {
			req.Header.Set("Authorization", u.Token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	tokens := map[string]string{
		"outsider":        w.fileToken(w.mallory),
		"other room":      w.fileToken(w.carol),
		"former member":   w.fileToken(w.eve),
		"auth not file":   w.mallory.Token,
		"forged":          "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IngiLCJ0eXBlIjoiZmlsZSJ9.c2lnbmF0dXJl",
		"member (bob)":    w.fileToken(w.bob),
		"uploader":        w.fileToken(w.alice),
		"superuser":       w.fileToken(w.super),
		"eve for her own": w.fileToken(w.eve),
	}
	allowed := map[string]bool{"member (bob)": true, "uploader": true, "superuser": true}

	for name, token := range tokens {
		for _, path := range []string{aliceFile, aliceFile + "?thumb=100x100", aliceFile + "?thumb=480x0", byCollectionID, aliceFile + "?download=1"} {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			got := download(nil, path+sep+"token="+url.QueryEscape(token))
			if want := allowed[name]; (got == http.StatusOK) != want {
				t.Errorf("download %s with the %s token: %d, want allowed=%v", path, name, got, want)
			}
		}
	}
	// Without a token, an auth header is not enough (PocketBase's rule), even the uploader's.
	for _, u := range []*chattest.User{nil, w.mallory, w.alice} {
		if got := download(u, aliceFile); got != http.StatusNotFound {
			t.Errorf("download without a file token as %v: %d, want 404", u, got)
		}
	}
	// Eve keeps her own upload; nothing else of the room.
	if got := download(nil, file(w.eveMedia, w.eveFile)+"?token="+tokens["eve for her own"]); got != http.StatusOK {
		t.Errorf("eve downloads her own upload: %d", got)
	}
	// Guessed names: a wrong file name and a decoy record answer like a hidden one.
	for _, path := range []string{file(w.aliceMedia, "secret.png"), file(advDecoyID, w.aliceFile), file(w.aliceMedia, w.eveFile)} {
		if got := download(nil, path+"?token="+tokens["outsider"]); got != http.StatusNotFound {
			t.Errorf("download %s: %d, want 404", path, got)
		}
	}
}

// TestAdversarialMassAssignment: server-set fields sent by a client are
// overwritten or refused, on create and update, through the records API
// and the batch API.
func TestAdversarialMassAssignment(t *testing.T) {
	w := newAdvWorld(t)
	long := "2001-01-01 00:00:00.000Z"

	t.Run("create", func(t *testing.T) {
		// A message posted "as alice", "edited" long ago.
		res := w.ok(w.bob, http.MethodPost, advMessagesURL, map[string]any{
			"room": w.secret.id, "text": "forged", "user": w.alice.ID(), "edited_at": long})
		if res.Str("user") != w.bob.ID() || res.Str("edited_at") != "" {
			t.Errorf("message by bob stored user=%q edited_at=%q", res.Str("user"), res.Str("edited_at"))
		}
		// A reaction "by alice".
		res = w.ok(w.bob, http.MethodPost, advReactionsURL, map[string]any{"message": w.bobMsg, "reaction": "🔥", "user": w.alice.ID()})
		if res.Str("user") != w.bob.ID() {
			t.Errorf("reaction by bob stored user=%q", res.Str("user"))
		}
		// A room "created by alice": alice must not become its member.
		res = w.ok(w.mallory, http.MethodPost, advRoomsURL, map[string]any{"type": "group", "name": "trap", "created_by": w.alice.ID()})
		room := res.Str("id")
		if res.Str("created_by") != w.mallory.ID() {
			t.Errorf("room by mallory stored created_by=%q", res.Str("created_by"))
		}
		if n := w.env.Count("chat_room_users", "room = {:r} && user = {:u}", dbx.Params{"r": room, "u": w.alice.ID()}); n != 0 {
			t.Errorf("alice was made a member of mallory's room")
		}
		// An upload "by alice" stays mallory's: she cannot make alice attach it, nor attach it as alice.
		res = w.env.Upload(w.mallory, http.MethodPost, advMediaURL, map[string]string{"uploaded_by": w.alice.ID()},
			chattest.File{Field: "file", Name: "x.png", Content: chattest.PNG(4, 4)})
		if res.Status != http.StatusOK || res.Str("uploaded_by") != w.mallory.ID() {
			t.Errorf("upload by mallory: %d uploaded_by=%q", res.Status, res.Str("uploaded_by"))
		}
		// A membership "created by alice", with the adder's own permissions only.
		frank := w.env.NewUser("frank")
		res = w.ok(w.bob, http.MethodPost, advMembersURL, map[string]any{"room": w.secret.id, "user": frank.ID(), "created_by": w.alice.ID(), "permissions": []string{"can_create_messages"}})
		if res.Str("created_by") != w.bob.ID() {
			t.Errorf("membership added by bob stored created_by=%q", res.Str("created_by"))
		}
		// Attachment rows (and their sequence) are the module's alone.
		for _, body := range []map[string]any{
			{"message": w.bobMsg, "media": w.aliceMedia, "sequence": 0},
			{"message": w.bobMsg, "media": w.aliceMedia, "sequence": 7},
		} {
			if res := w.do(w.bob, http.MethodPost, advLinksURL, body); res.Status != http.StatusForbidden {
				t.Errorf("bob creates a chat_message_media row: %d %s", res.Status, res)
			}
		}
		// A message whose media list smuggles a sequence or a foreign upload.
		mine, _ := w.upload(w.bob)
		res = w.do(w.bob, http.MethodPost, advMessagesURL, map[string]any{"room": w.secret.id, "text": "x", "media": []any{map[string]any{"id": mine, "sequence": 9}}})
		if res.Status != http.StatusBadRequest {
			t.Errorf("media as objects: %d %s", res.Status, res)
		}
		res = w.ok(w.bob, http.MethodPost, advMessagesURL, map[string]any{"room": w.secret.id, "text": "mine", "media": []string{mine}, "sequence": 5})
		link, err := w.env.App.FindFirstRecordByFilter("chat_message_media", "message = {:m}", dbx.Params{"m": res.Str("id")})
		if err != nil || link.GetInt("sequence") != 0 || link.GetString("media") != mine {
			t.Errorf("attachment of bob's message: %v %v", link, err)
		}
	})

	t.Run("update", func(t *testing.T) {
		before := w.snapshot()
		refused := []struct {
			who    *chattest.User
			path   string
			body   map[string]any
			status int
		}{
			// A message's room and author never change.
			{w.bob, advMessagesURL + "/" + w.bobMsg, map[string]any{"user": w.alice.ID()}, 400},
			{w.bob, advMessagesURL + "/" + w.bobMsg, map[string]any{"room": w.carolRoom.id}, 400},
			{w.bob, advMessagesURL + "/" + w.bobMsg, map[string]any{"room": w.lobby.id}, 400},
			{w.bob, advMessagesURL + "/" + w.bobMsg, map[string]any{"room": w.dm.id}, 400},
			// A membership's room, user and creator never change.
			{w.bob, advMembersURL + "/" + w.bobMember, map[string]any{"room": w.carolRoom.id}, 400},
			{w.bob, advMembersURL + "/" + w.bobMember, map[string]any{"user": w.mallory.ID()}, 400},
			{w.bob, advMembersURL + "/" + w.bobMember, map[string]any{"created_by": w.bob.ID()}, 400},
			{w.alice, advMembersURL + "/" + w.bobMember, map[string]any{"room": w.lobby.id}, 400},
			// A room's type and creator never change.
			{w.alice, advRoomsURL + "/" + w.secret.id, map[string]any{"type": "channel"}, 400},
			{w.alice, advRoomsURL + "/" + w.secret.id, map[string]any{"created_by": w.bob.ID()}, 400},
			{w.super, advRoomsURL + "/" + w.dm.id, map[string]any{"type": "group"}, 400},
			{w.alice, advRoomsURL + "/" + w.dm.id, map[string]any{"type": "group"}, 403}, // she lacks can_edit_room there
			// Whose membership it is comes from the record, not the request.
			{w.bob, advMembersURL + "/" + w.aliceMember, map[string]any{"user": w.bob.ID(), "permissions": []string{}}, 403},
			{w.bob, advMembersURL + "/" + w.aliceMember, map[string]any{"user": w.bob.ID(), "muted": true}, 403},
			// Reactions, uploads and attachment rows are not updated by users at all.
			{w.bob, advReactionsURL + "/" + w.bobReaction, map[string]any{"message": w.bobMsg}, 403},
			{w.bob, advReactionsURL + "/" + w.bobReaction, map[string]any{"user": w.alice.ID()}, 403},
			{w.alice, advMediaURL + "/" + w.aliceMedia, map[string]any{"uploaded_by": w.bob.ID()}, 403},
			{w.alice, advLinksURL + "/" + w.secretLink, map[string]any{"sequence": 3}, 403},
			{w.alice, advLinksURL + "/" + w.secretLink, map[string]any{"media": w.eveMedia}, 403},
		}
		for _, r := range refused {
			res := w.do(r.who, http.MethodPatch, r.path, r.body)
			if res.Status != r.status {
				t.Errorf("PATCH %s %v: %d, want %d: %s", r.path, r.body, res.Status, r.status, res)
			}
		}
		if after := w.snapshot(); after != before {
			t.Fatalf("refused updates changed data:\n%s\n---\n%s", before, after)
		}

		// edited_at is the server's: ignored without a text change, now with one.
		res := w.ok(w.bob, http.MethodPatch, advMessagesURL+"/"+w.bobMsg, map[string]any{"edited_at": long})
		if res.Str("edited_at") != "" {
			t.Errorf("edited_at set by the client to %q", res.Str("edited_at"))
		}
		start := time.Now().UTC().Add(-time.Minute)
		res = w.ok(w.bob, http.MethodPatch, advMessagesURL+"/"+w.bobMsg, map[string]any{"text": "ZQXsecret edited", "edited_at": long})
		edited, err := types.ParseDateTime(res.Str("edited_at"))
		if err != nil || edited.Time().Before(start) {
			t.Errorf("edited_at after a text change = %q, want the server's now", res.Str("edited_at"))
		}
	})

	t.Run("batch", func(t *testing.T) {
		res := w.ok(w.bob, http.MethodPost, "/api/batch", map[string]any{"requests": []any{
			map[string]any{"method": "POST", "url": advMessagesURL, "body": map[string]any{"room": w.secret.id, "text": "batched", "user": w.alice.ID(), "edited_at": long}},
			map[string]any{"method": "POST", "url": advReactionsURL, "body": map[string]any{"message": w.secretMsg, "reaction": "🚀", "user": w.alice.ID()}},
		}})
		var results []struct {
			Status int            `json:"status"`
			Body   map[string]any `json:"body"`
		}
		if err := json.Unmarshal(res.Body, &results); err != nil || len(results) != 2 {
			t.Fatalf("batch answer: %s", res)
		}
		for _, r := range results {
			if r.Body["user"] != w.bob.ID() || (r.Body["edited_at"] != nil && r.Body["edited_at"] != "") {
				t.Errorf("batched create stored %v", r.Body)
			}
		}
		before := w.snapshot()
		res = w.do(w.bob, http.MethodPost, "/api/batch", map[string]any{"requests": []any{
			map[string]any{"method": "PATCH", "url": advMessagesURL + "/" + w.bobMsg, "body": map[string]any{"room": w.carolRoom.id}},
		}})
		if res.Status != http.StatusBadRequest {
			t.Errorf("batched room change: %d %s", res.Status, res)
		}
		if w.snapshot() != before {
			t.Errorf("a refused batch changed data")
		}
	})
}

// TestAdversarialEscalation: a member cannot gain permissions, or grant
// more than they hold, through create, update, batch or upsert.
func TestAdversarialEscalation(t *testing.T) {
	w := newAdvWorld(t)
	before := w.snapshot()
	batch := func(ops ...map[string]any) map[string]any { return map[string]any{"requests": ops} }
	op := func(method, url string, body map[string]any) map[string]any {
		return map[string]any{"method": method, "url": url, "body": body}
	}
	cases := []struct {
		name   string
		who    *chattest.User
		method string
		path   string
		body   map[string]any
		status int
		perm   string // the permission a 403 must name
	}{
		{"bob grants himself can_delete_room", w.bob, http.MethodPatch, advMembersURL + "/" + w.bobMember,
			map[string]any{"permissions": slices.Clone(advAllPermissions)}, 403, "can_remove_users"},
		{"bob grants himself posting in the channel", w.bob, http.MethodPatch, advMembersURL + "/" + w.bobNews,
			map[string]any{"permissions": []string{"can_create_messages"}}, 403, "can_create_messages"},
		{"bob strips alice", w.bob, http.MethodPatch, advMembersURL + "/" + w.aliceMember,
			map[string]any{"permissions": []string{}}, 403, ""},
		{"bob adds mallory above himself", w.bob, http.MethodPost, advMembersURL,
			map[string]any{"room": w.secret.id, "user": w.mallory.ID(), "permissions": []string{"can_delete_room"}}, 403, "can_delete_room"},
		{"bob adds himself again with everything", w.bob, http.MethodPost, advMembersURL,
			map[string]any{"room": w.secret.id, "user": w.bob.ID(), "permissions": advAllPermissions}, 403, ""},
		{"bob removes alice", w.bob, http.MethodDelete, advMembersURL + "/" + w.aliceMember, nil, 403, "can_remove_users"},
		{"bob renames the room", w.bob, http.MethodPatch, advRoomsURL + "/" + w.secret.id, map[string]any{"name": "mine"}, 403, "can_edit_room"},
		{"bob deletes the room", w.bob, http.MethodDelete, advRoomsURL + "/" + w.secret.id, nil, 403, "can_delete_room"},
		{"bob edits alice's message", w.bob, http.MethodPatch, advMessagesURL + "/" + w.secretMsg, map[string]any{"text": "mine"}, 403, "can_edit_messages"},
		{"bob deletes alice's message", w.bob, http.MethodDelete, advMessagesURL + "/" + w.secretMsg, nil, 403, "can_delete_messages"},
		{"bob deletes alice's reaction", w.bob, http.MethodDelete, advReactionsURL + "/" + w.aliceReact, nil, 403, "can_delete_messages"},
		{"bob posts in the channel", w.bob, http.MethodPost, advMessagesURL, map[string]any{"room": w.news.id, "text": "spam"}, 403, "can_create_messages"},
		{"bob leaves the private room", w.bob, http.MethodDelete, advMembersURL + "/" + w.membershipID(w.dm.id, w.bob), nil, 403, ""},
		{"mallory joins the public channel with everything", w.mallory, http.MethodPost, advMembersURL,
			map[string]any{"room": w.news.id, "user": w.mallory.ID(), "permissions": advAllPermissions}, 403, ""},
		{"mallory joins the public group with can_remove_users", w.mallory, http.MethodPost, advMembersURL,
			map[string]any{"room": w.lobby.id, "user": w.mallory.ID(), "permissions": []string{"can_remove_users"}}, 403, "can_remove_users"},
		{"mallory adds carol to the public group", w.mallory, http.MethodPost, advMembersURL,
			map[string]any{"room": w.lobby.id, "user": w.carol.ID()}, 403, "can_add_users"},
		{"mallory joins the secret group", w.mallory, http.MethodPost, advMembersURL,
			map[string]any{"room": w.secret.id, "user": w.mallory.ID(), "permissions": []string{}}, 404, ""},
		{"mallory opens a private room through the records API", w.mallory, http.MethodPost, advRoomsURL,
			map[string]any{"type": "private_messages"}, 400, ""},
		{"mallory adds herself to alice and bob's private room", w.mallory, http.MethodPost, advMembersURL,
			map[string]any{"room": w.dm.id, "user": w.mallory.ID()}, 404, ""},
		{"even a superuser cannot add a third member to the private room", w.super, http.MethodPost, advMembersURL,
			map[string]any{"room": w.dm.id, "user": w.mallory.ID()}, 400, ""},
		{"eve re-adds herself", w.eve, http.MethodPost, advMembersURL,
			map[string]any{"room": w.secret.id, "user": w.eve.ID()}, 404, ""},
		{"eve edits her old message", w.eve, http.MethodPatch, advMessagesURL + "/" + w.eveMsg, map[string]any{"text": "still here"}, 404, ""},
		{"eve deletes her old message", w.eve, http.MethodDelete, advMessagesURL + "/" + w.eveMsg, nil, 404, ""},

		// Batch: one refused operation refuses all.
		{"batch: bob adds mallory as allowed, then promotes himself", w.bob, http.MethodPost, "/api/batch", batch(
			op("POST", advMembersURL, map[string]any{"room": w.secret.id, "user": w.mallory.ID(), "permissions": []string{"can_create_messages"}}),
			op("PATCH", advMembersURL+"/"+w.bobMember, map[string]any{"permissions": advAllPermissions}),
		), 400, ""},
		{"batch: carol creates a room and joins the secret one", w.carol, http.MethodPost, "/api/batch", batch(
			op("POST", advRoomsURL, map[string]any{"type": "group", "name": "cover"}),
			op("POST", advMembersURL, map[string]any{"room": w.secret.id, "user": w.carol.ID(), "permissions": advAllPermissions}),
		), 400, ""},
		{"batch upsert: bob overwrites his membership", w.bob, http.MethodPost, "/api/batch", batch(
			op("PUT", advMembersURL, map[string]any{"id": w.bobMember, "room": w.secret.id, "user": w.bob.ID(), "permissions": advAllPermissions}),
		), 400, ""},
		{"batch upsert: carol overwrites alice's membership", w.carol, http.MethodPost, "/api/batch", batch(
			op("PUT", advMembersURL, map[string]any{"id": w.aliceMember, "room": w.carolRoom.id, "user": w.carol.ID(), "permissions": advAllPermissions}),
		), 400, ""},
		{"batch upsert: carol re-creates eve's deleted membership for herself", w.carol, http.MethodPost, "/api/batch", batch(
			op("PUT", advMembersURL, map[string]any{"id": w.secret.ids[len(w.secret.ids)-1], "room": w.secret.id, "user": w.carol.ID(), "permissions": advAllPermissions}),
		), 400, ""},
		{"batch: mallory deletes alice's message", w.mallory, http.MethodPost, "/api/batch", batch(
			op("DELETE", advMessagesURL+"/"+w.secretMsg, nil),
		), 400, ""},
		{"batch: bob writes an attachment row", w.bob, http.MethodPost, "/api/batch", batch(
			op("POST", advLinksURL, map[string]any{"message": w.bobMsg, "media": w.aliceMedia, "sequence": 1}),
		), 400, ""},
	}
	for _, c := range cases {
		res := w.do(c.who, c.method, c.path, c.body)
		if res.Status != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, res.Status, c.status, res)
			continue
		}
		if c.perm != "" {
			msg, _ := res.JSON()["message"].(string)
			if !strings.Contains(strings.ToLower(msg), c.perm) {
				t.Errorf("%s: 403 %q does not name %s", c.name, msg, c.perm)
			}
		}
		if c.status == 404 {
			w.checkLeak(t, advActor{name: c.name, forbidden: []*advRoom{w.secret, w.dm}}, c.name, c.path+fmt.Sprint(c.body), res)
		}
	}
	if after := w.snapshot(); after != before {
		t.Fatalf("refused escalations changed data:\n%s\n---\n%s", before, after)
	}
}

// TestAdversarialMemberLacksPermission: bob, in the secret room, is told
// which permission he lacks (403), never more.
func TestAdversarialMemberLacksPermission(t *testing.T) {
	w := newAdvWorld(t)
	res := w.do(w.bob, http.MethodPost, advMessagesURL, map[string]any{"room": w.news.id, "text": "reader posts"})
	if res.Status != http.StatusForbidden {
		t.Fatalf("reader posts: %d %s", res.Status, res)
	}
	data, _ := res.JSON()["data"].(map[string]any)
	perm, _ := data["permission"].(map[string]any)
	if msg, _ := perm["message"].(string); !strings.Contains(strings.ToLower(msg), "can_create_messages") {
		t.Errorf("403 data = %v, want the permission named", data)
	}
	// A reader reads and reacts.
	news := w.ok(w.bob, http.MethodGet, advMessagesURL+advQ("filter", "room = '"+w.news.id+"' && system = ''"), nil).Items()
	if len(news) != 1 {
		t.Fatalf("reader sees %d channel messages, want 1", len(news))
	}
	w.ok(w.bob, http.MethodPost, advReactionsURL, map[string]any{"message": news[0]["id"], "reaction": "👀"})
}

// TestAdversarialRealtimeReplay: a removed member's token (and a deleted
// user's, and a stolen client id) gets nothing from room topics or stock
// subscriptions, whatever options it sends. Absence is proved by order: the
// attacker's own sentinel message arrives first.
func TestAdversarialRealtimeReplay(t *testing.T) {
	w := newAdvWorld(t)
	topic := "chat/rooms/" + w.secret.id
	const wait = 5 * time.Second

	// Carol is a member of the secret room while connected, then removed.
	carolMember := w.ok(w.alice, http.MethodPost, advMembersURL, map[string]any{"room": w.secret.id, "user": w.carol.ID()}).Str("id")
	old := w.env.Connect(w.carol)
	opts := func(o string) string { return "chat_messages/*?options=" + url.QueryEscape(o) }
	filtered := opts(`{"query":{"filter":"room = '` + w.secret.id + `'"}}`)
	expanded := opts(`{"query":{"expand":"room,chat_message_media_via_message.media"}}`)
	if res := old.Subscribe(topic, "chat_messages/*", "chat_message_reactions/*", filtered, expanded, "chat_messages/"+w.secretMsg); res.Status != http.StatusNoContent {
		t.Fatalf("member subscribes: %d %s", res.Status, res)
	}
	w.status(w.alice, http.MethodDelete, advMembersURL+"/"+carolMember, nil, http.StatusNoContent)
	old.Expect(t, topic, func(ev chattest.Event) bool { return ev.Type() == "member.left" }, wait)

	// Her old token, on a new connection: refused topics; stock subscriptions
	// accepted but silent for the room.
	fresh := w.env.Connect(w.carol)
	if res := fresh.Subscribe(topic); res.Status != http.StatusForbidden {
		t.Errorf("removed member resubscribes to the room topic: %d", res.Status)
	}
	if res := old.Subscribe(topic, "chat_messages/*", filtered, expanded); res.Status != http.StatusForbidden {
		t.Errorf("removed member renews the room topic on her old connection: %d", res.Status)
	}
	// The sentinel comes through both kinds of stock subscription that pbchat
	// serves: without options, and with filter or expand options (evaluated
	// per member on the writer).
	pbSentinel := opts(`{"query":{"filter":"room = '` + w.carolRoom.id + `'"}}`)
	for _, c := range []*chattest.SSE{old, fresh} {
		if res := c.Subscribe("chat_messages/*", "chat_message_reactions/*", "chat_room_users/*", "chat_rooms/*", filtered, expanded, "chat_messages/"+w.secretMsg, pbSentinel); res.Status != http.StatusNoContent {
			t.Fatalf("stock subscribe: %d %s", res.Status, res)
		}
	}

	// A deleted user's token and a stolen client id.
	gone := w.env.NewUser("gone")
	w.ok(w.alice, http.MethodPost, advMembersURL, map[string]any{"room": w.secret.id, "user": gone.ID()})
	goneConn := w.env.Connect(gone)
	goneConn.Subscribe(topic, "chat_messages/*")
	w.status(w.super, http.MethodDelete, advUsersURL+"/"+gone.ID(), nil, http.StatusNoContent)
	if res := goneConn.Subscribe(topic); res.Status < 400 {
		t.Errorf("a deleted user's token subscribes to the room topic: %d", res.Status)
	}
	bobConn := w.env.Connect(w.bob)
	if res := bobConn.Subscribe(topic); res.Status != http.StatusNoContent {
		t.Fatalf("bob subscribes: %d", res.Status)
	}
	for _, thief := range []*chattest.User{w.mallory, w.carol, nil} {
		res := w.env.Do(thief, http.MethodPost, "/api/realtime", map[string]any{"clientId": bobConn.ClientID, "subscriptions": []string{topic, "chat_messages/*"}})
		if res.Status != http.StatusForbidden {
			t.Errorf("subscribing with bob's client id as %v: %d %s", thief, res.Status, res)
		}
	}
	// Bob's client kept its own subscription: he still hears the room.

	// Activity in the secret room of every kind, then carol's sentinel.
	msg := w.ok(w.alice, http.MethodPost, advMessagesURL, map[string]any{"room": w.secret.id, "text": "ZQXsecret after carol left"}).Str("id")
	w.ok(w.alice, http.MethodPatch, advMessagesURL+"/"+w.secretMsg, map[string]any{"text": "ZQXsecret edited"})
	w.ok(w.bob, http.MethodPost, advReactionsURL, map[string]any{"message": msg, "reaction": "🙈"})
	w.status(w.alice, http.MethodPost, "/api/chat/rooms/"+w.secret.id+"/typing", nil, http.StatusNoContent)
	w.ok(w.alice, http.MethodPatch, advRoomsURL+"/"+w.secret.id, map[string]any{"name": "ZQXsecret renamed"})
	w.ok(w.alice, http.MethodPost, advMembersURL, map[string]any{"room": w.secret.id, "user": w.mallory.ID()})
	// Bob, a member, hears it (the events exist and flow).
	bobConn.Expect(t, topic, func(ev chattest.Event) bool { return ev.RecordID() == msg }, wait)

	// PocketBase decides who gets an event before the write's response and
	// sends it from a goroutine; pbchat queues per client in order. Any
	// event of the secret room was decided a full round trip before the
	// sentinel's, on both paths.
	sentinel := w.ok(w.carol, http.MethodPost, advMessagesURL, map[string]any{"room": w.carolRoom.id, "text": "ZQXcarol sentinel"}).Str("id")
	for name, c := range map[string]*chattest.SSE{"old connection": old, "new connection": fresh} {
		seen := map[string]bool{}
		for !seen["chat_messages/*"] || !seen[pbSentinel] {
			ev, ok := c.Next(wait)
			if !ok {
				t.Fatalf("%s: no sentinel on both paths (got %v)", name, seen)
			}
			if strings.Contains(fmt.Sprint(ev.Data), "ZQXsecret") || ev.Name == topic {
				t.Fatalf("%s: a removed member got %s %v", name, ev.Name, ev.Data)
			}
			if ev.RecordID() == sentinel {
				seen[ev.Name] = true
				continue
			}
			// Only her own room's events may come before the sentinel.
			if room, _ := ev.Record()["room"].(string); room != w.carolRoom.id && ev.Record()["id"] != w.carolRoom.id {
				t.Fatalf("%s: event before the sentinel from elsewhere: %s %v", name, ev.Name, ev.Data)
			}
		}
	}
}
