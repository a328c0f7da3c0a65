package hooks_test

import (
	"bytes"
	"encoding/json/jsontext"
	"encoding/json/v2"
	"net/http"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chattest"
)

// The overview encodes its records' JSON itself when nothing needs
// PocketBase's records: the same bytes as PocketBase's record encoding, for
// every field type and awkward values, hidden fields left out.
func TestOverviewRecordJSONMatchesPocketBase(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	users, err := env.App.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}
	alice := env.NewUser("alice")
	shapes := everyFieldType(t, env.App, "overview_shapes", users)
	for _, v := range []map[string]any{
		{},
		{"text": `Trip "2" <b>&</b> 🎉 \ ` + "\u2028\x01\x7f\ttab\nline", "secret": "hidden", "email": "a@b.co",
			"url": "https://x.y/?a=1&b=2", "editor": "<p>hi</p>", "date": "2026-11-30 10:11:12.345Z",
			"one": alice.ID(), "many": []string{alice.ID()}, "picks": []string{"c", "a"}, "flag": true,
			"num": 1.5, "data": map[string]any{"k": []any{1, "two", nil}, "a": "<&>"}},
		{"num": 3, "data": "just a string"},
		{"num": -42, "data": []any{}},
		{"num": 1e300},
		{"num": 0.1},
		{"text": "bad \xff utf-8"},
	} {
		record := core.NewRecord(shapes)
		record.Load(v)
		if err := env.App.Save(record); err != nil {
			t.Fatalf("save %v: %v", v, err)
		}
		stored, err := env.App.FindRecordById(shapes, record.Id)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(stored, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
		if err != nil {
			t.Fatal(err)
		}
		got, err := hooks.OverviewRecordJSON(stored)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("record %v:\n got %s\nwant %s", v, got, want)
		}
	}
}

// The overview answers the same with and without PocketBase's records (a
// host enrich hook that changes nothing makes it use them), every key's
// value byte for byte.
func TestOverviewSameWithAndWithoutRecords(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	alice, bob := env.NewUser("alice"), env.NewUser("bob")
	for _, name := range []string{`Trip "2" <b>&</b> 🎉`, "quiet", "line\nbreak\ttab \u2028"} {
		room := env.Do(alice, http.MethodPost, "/api/collections/chat_rooms/records", map[string]any{"type": "group", "name": name, "description": name}).Str("id")
		env.Do(alice, http.MethodPost, "/api/collections/chat_room_users/records", map[string]any{"room": room, "user": bob.ID()})
		if name != "quiet" {
			env.Do(alice, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": room, "text": "héllo <b> \\ \"" + name})
		}
	}
	for _, path := range []string{"/api/chat/rooms", "/api/chat/rooms?perPage=2&page=2", "/api/chat/rooms?page=9"} {
		plain := env.Do(bob, http.MethodGet, path, nil)
		if path == "/api/chat/rooms" && len(plain.Items()) != 3 {
			t.Fatalf("bob's rooms: %s", plain)
		}
		id := env.App.OnRecordEnrich().BindFunc(func(e *core.RecordEnrichEvent) error { return e.Next() })
		enriched := env.Do(bob, http.MethodGet, path, nil)
		env.App.OnRecordEnrich().Unbind(id)
		if plain.Status != http.StatusOK || enriched.Status != http.StatusOK {
			t.Fatalf("%s: %d %s / %d %s", path, plain.Status, plain, enriched.Status, enriched)
		}
		var got, want map[string]jsontext.Value
		if err := json.Unmarshal(plain.Body, &got); err != nil {
			t.Fatalf("%s: %v: %s", path, err, plain)
		}
		if err := json.Unmarshal(enriched.Body, &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: keys\n got %s\nwant %s", path, plain, enriched)
		}
		for k, w := range want {
			if !bytes.Equal(got[k], w) {
				t.Errorf("%s: %s\n got %s\nwant %s", path, k, got[k], w)
			}
		}
	}
}

// everyFieldType saves a collection with a field of every type PocketBase
// has (a hidden one too), for tests that encode records as PocketBase does.
func everyFieldType(t *testing.T, app core.App, name string, users *core.Collection) *core.Collection {
	t.Helper()
	shapes := core.NewBaseCollection(name)
	shapes.Fields.Add(
		&core.TextField{Name: "text"},
		&core.TextField{Name: "secret", Hidden: true},
		&core.EmailField{Name: "email"},
		&core.URLField{Name: "url"},
		&core.EditorField{Name: "editor"},
		&core.DateField{Name: "date"},
		&core.AutodateField{Name: "created", OnCreate: true},
		&core.RelationField{Name: "one", CollectionId: users.Id, MaxSelect: 1},
		&core.RelationField{Name: "many", CollectionId: users.Id, MaxSelect: 5},
		&core.SelectField{Name: "pick", Values: []string{"a", "b", "c"}, MaxSelect: 1},
		&core.SelectField{Name: "picks", Values: []string{"a", "b", "c"}, MaxSelect: 3},
		&core.FileField{Name: "file", MaxSelect: 1},
		&core.FileField{Name: "files", MaxSelect: 3},
		&core.BoolField{Name: "flag"},
		&core.NumberField{Name: "num"},
		&core.JSONField{Name: "data"},
		&core.GeoPointField{Name: "where"},
	)
	if err := app.Save(shapes); err != nil {
		t.Fatal(err)
	}
	return shapes
}
