package hooks_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chattest"
)

// TestRecordJSONMatchesPocketBase: the JSON sync builds in SQL equals what
// PocketBase's record encoding gives, for every chat collection and for a
// collection with every field type the SQL knows (as a host app may add
// fields to a chat collection), awkward values included.
func TestRecordJSONMatchesPocketBase(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	alice, bob := env.NewUser("alice"), env.NewUser("bob")
	users, err := env.App.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}

	// Chat records through the API.
	room := env.Do(alice, http.MethodPost, "/api/collections/chat_rooms/records", map[string]any{"type": "group", "name": `Trip "2" <b>&</b> 🎉`, "description": "line\nbreak\ttab"}).Str("id")
	env.Do(alice, http.MethodPost, "/api/collections/chat_room_users/records", map[string]any{"room": room, "user": bob.ID()})
	media := env.Upload(alice, http.MethodPost, "/api/collections/chat_media/records", nil, chattest.File{Field: "file", Name: "a.txt", Content: []byte("hello")}).Str("id")
	msg := env.Do(alice, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": room, "text": "héllo \u2028 \\ \"quoted\"", "media": []string{media}}).Str("id")
	env.Do(bob, http.MethodPost, "/api/collections/chat_message_reactions/records", map[string]any{"message": msg, "reaction": "👍"})
	env.Do(alice, http.MethodPatch, "/api/collections/chat_messages/records/"+msg, map[string]any{"text": "edited"})

	// Every known field type, hidden fields too.
	shapes := everyFieldType(t, env.App, "sync_shapes", users)
	values := []map[string]any{
		{},
		{"text": "plain", "secret": "hidden", "email": "a@b.co", "url": "https://x.y/?a=1&b=2", "editor": "<p>hi</p>",
			"date": "2026-11-30 10:11:12.345Z", "one": alice.ID(), "many": []string{alice.ID(), bob.ID()},
			"pick": "b", "picks": []string{"c", "a"}, "flag": true, "num": 1.5, "data": map[string]any{"k": []any{1, "two", nil}}},
		{"num": 3, "data": "just a string", "flag": false, "many": []string{bob.ID()}},
		{"num": -42, "data": []any{}, "text": "\x01 control"},
		{"where": map[string]any{"lon": 23.5, "lat": -42.25}},
	}
	var shapeIDs []string
	for _, v := range values {
		record := core.NewRecord(shapes)
		record.Load(v)
		if err := env.App.Save(record); err != nil {
			t.Fatalf("save %v: %v", v, err)
		}
		shapeIDs = append(shapeIDs, record.Id)
	}
	// File names as PocketBase stores them (uploads are beside the point here).
	if _, err := env.App.DB().NewQuery(`UPDATE sync_shapes SET file = 'a_x1.png', files = '["b_x2.png","c_x3.png"]' WHERE id = {:id}`).
		Bind(dbx.Params{"id": shapeIDs[1]}).Execute(); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"chat_rooms", "chat_room_users", "chat_messages", "chat_media", "chat_message_media", "chat_message_reactions", "sync_shapes"} {
		t.Run(name, func(t *testing.T) {
			collection, err := env.App.FindCollectionByNameOrId(name)
			if err != nil {
				t.Fatal(err)
			}
			query, ok := hooks.RecordJSONSQL(collection)
			if !ok {
				t.Fatalf("no SQL for %s", name)
			}
			var records []*core.Record
			if err := env.App.RecordQuery(collection).All(&records); err != nil {
				t.Fatal(err)
			}
			if len(records) == 0 {
				t.Fatalf("no %s records", name)
			}
			ids := make([]string, len(records))
			for i, r := range records {
				ids[i] = r.Id
			}
			rawIDs, _ := json.Marshal(ids)
			rows, err := env.App.ConcurrentDB().(*dbx.DB).DB().Query(query, string(rawIDs))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for rows.Next() {
				var id, record string
				if err := rows.Scan(&id, &record); err != nil {
					t.Fatal(err)
				}
				got[id] = record
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			for _, record := range records {
				want, err := json.Marshal(record)
				if err != nil {
					t.Fatal(err)
				}
				var a, b any
				if err := json.Unmarshal([]byte(got[record.Id]), &a); err != nil {
					t.Fatalf("%s: SQL JSON %q: %v", record.Id, got[record.Id], err)
				}
				_ = json.Unmarshal(want, &b)
				if !reflect.DeepEqual(a, b) {
					t.Errorf("%s %s:\n SQL %s\nwant %s", name, record.Id, got[record.Id], want)
				}
			}
		})
	}

	if _, ok := hooks.RecordJSONSQL(users); ok {
		t.Error("auth collections (email visibility) must take PocketBase's way")
	}
}
