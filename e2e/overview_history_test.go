package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
)

// A history page reads attachments and reactions with one query per
// relation, and answers as PocketBase's own expand does: each listed message
// equals the same message viewed (PocketBase's view path) with the same
// expand, host enrich hooks included, and the number of queries does not
// grow with the page.
func TestHistoryPageExpandsAsPocketBase(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob, carol := r.NewUser("alice"), r.NewUser("bob"), r.NewUser("carol")
	room := r.createRoom(alice, "group", "History")
	r.addMember(alice, room, bob, nil)
	// A host app's enrich hook on expanded records runs on both paths.
	r.App.OnRecordEnrich("chat_message_reactions").BindFunc(func(e *core.RecordEnrichEvent) error {
		e.Record.WithCustomData(true)
		e.Record.Set("host_context", e.RequestInfo.Context)
		return e.Next()
	})

	post := func(body map[string]any) string {
		t.Helper()
		body["room"] = room
		res := r.Do(alice, http.MethodPost, "/api/collections/chat_messages/records", body)
		r.expect(res, http.StatusOK, "post")
		time.Sleep(2 * time.Millisecond) // created has millisecond precision
		return res.Str("id")
	}
	pictures := post(map[string]any{"text": "two pictures", "media": []string{r.upload(alice), r.upload(alice)}})
	liked := post(map[string]any{"text": "liked"})
	r.react(bob, liked, "👍")
	r.react(alice, liked, "🎉")
	r.react(bob, liked, "❤️")
	post(map[string]any{"text": "a reply", "reply_to": pictures})
	post(map[string]any{"text": "plain"})

	db, ok := r.App.ConcurrentDB().(*dbx.DB)
	if !ok {
		t.Fatalf("concurrent db is %T", r.App.ConcurrentDB())
	}
	var mu sync.Mutex
	var queries int
	db.QueryLogFunc = func(_ context.Context, _ time.Duration, q string, _ *sql.Rows, _ error) {
		if strings.Contains(q, "chat_") {
			mu.Lock()
			queries++
			mu.Unlock()
		}
	}
	list := func(expand string, perPage int) ([]map[string]any, int) {
		t.Helper()
		mu.Lock()
		queries = 0
		mu.Unlock()
		q := url.Values{}
		q.Set("filter", fmt.Sprintf("room = '%s'", room))
		q.Set("sort", "-created,-id")
		q.Set("perPage", fmt.Sprint(perPage))
		q.Set("skipTotal", "1")
		q.Set("expand", expand)
		res := r.Do(bob, http.MethodGet, "/api/collections/chat_messages/records?"+q.Encode(), nil)
		r.expect(res, http.StatusOK, "history page")
		mu.Lock()
		defer mu.Unlock()
		return res.Items(), queries
	}

	for _, expand := range []string{
		"chat_message_media_via_message.media,chat_message_reactions_via_message",
		"chat_message_media_via_message.media,chat_message_reactions_via_message,reply_to",
		"chat_message_reactions_via_message, chat_message_media_via_message",
		"chat_message_media_via_message,chat_message_media_via_message.media",
		"reply_to.chat_message_media_via_message.media",
	} {
		items, _ := list(expand, 50)
		if len(items) < 5 {
			t.Fatalf("%s: %d items", expand, len(items))
		}
		for _, item := range items {
			view := r.Do(bob, http.MethodGet, "/api/collections/chat_messages/records/"+item["id"].(string)+"?expand="+url.QueryEscape(expand), nil)
			r.expect(view, http.StatusOK, "view")
			if !reflect.DeepEqual(item, view.JSON()) {
				t.Errorf("expand %s: listed\n%v\nviewed\n%v", expand, item, view.JSON())
			}
		}
	}

	// What a member sees: the attachments in their order, every reaction,
	// the host hook's mark in the expand context.
	items, _ := list("chat_message_media_via_message.media,chat_message_reactions_via_message", 50)
	byID := map[string]map[string]any{}
	for _, item := range items {
		byID[item["id"].(string)] = item
	}
	links := rigList(rigMap(byID[pictures]["expand"])["chat_message_media_via_message"])
	if len(links) != 2 || links[0]["sequence"] != 0.0 || links[1]["sequence"] != 1.0 || rigMap(links[1]["expand"])["media"] == nil {
		t.Errorf("attachments of %s: %v", pictures, links)
	}
	reactions := rigList(rigMap(byID[liked]["expand"])["chat_message_reactions_via_message"])
	if len(reactions) != 3 || reactions[0]["host_context"] != core.RequestInfoContextExpand {
		t.Errorf("reactions of %s: %v", liked, reactions)
	}

	// Queries per page: one for the page and one per expanded collection
	// (PocketBase alone: one per message and relation besides, 13 here).
	if _, n := list("chat_message_media_via_message.media,chat_message_reactions_via_message", 50); n != 4 {
		t.Errorf("chat queries for a page of 5: %d, want 4", n)
	}

	// A host app's own view rule on reactions is evaluated, not assumed:
	// bob sees his own reactions only, on the list as on the view.
	reactionsCollection, err := r.App.FindCollectionByNameOrId("chat_message_reactions")
	if err != nil {
		t.Fatal(err)
	}
	ownOnly := `@request.auth.id != "" && user = @request.auth.id`
	reactionsCollection.ViewRule = &ownOnly
	if err := r.App.Save(reactionsCollection); err != nil {
		t.Fatal(err)
	}
	expand := "chat_message_media_via_message.media,chat_message_reactions_via_message"
	items, _ = list(expand, 50)
	for _, item := range items {
		view := r.Do(bob, http.MethodGet, "/api/collections/chat_messages/records/"+item["id"].(string)+"?expand="+url.QueryEscape(expand), nil)
		if !reflect.DeepEqual(item, view.JSON()) {
			t.Errorf("own reactions only: listed\n%v\nviewed\n%v", item, view.JSON())
		}
		if item["id"] == liked {
			if own := rigList(rigMap(item["expand"])["chat_message_reactions_via_message"]); len(own) != 2 || own[0]["user"] != bob.ID() || own[1]["user"] != bob.ID() {
				t.Errorf("bob's own reactions of %s: %v", liked, own)
			}
		}
	}

	// Not a member: nothing listed, nothing expanded.
	res := r.Do(carol, http.MethodGet, "/api/collections/chat_messages/records?filter="+
		url.QueryEscape(fmt.Sprintf("room = '%s'", room))+"&expand="+url.QueryEscape("chat_message_reactions_via_message"), nil)
	if res.Status != http.StatusOK || len(res.Items()) != 0 {
		t.Errorf("outsider's history page: %d %s", res.Status, res)
	}
}
