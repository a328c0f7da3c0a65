package e2e

// The generated oracle test: every filter path from a collection an outsider
// can read (users, public rooms, their own rooms, memberships, messages,
// reactions, media, attachment links, and a host app's collection related to
// chat) into the rows of chat collections, through relations, back-relations
// and @collection, with every operator form, asked with a true and a false
// guess about a room the prober is not in. The two answers must be equal.

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chattest"
)

// oracleLeaf is a field of a chat collection and its value in the secret room.
type oracleLeaf struct {
	field, truth string
	text, multi  bool
}

type oracleHop struct {
	prop   string
	target *core.Collection
}

func TestOracleGenerated(t *testing.T) {
	w := newAdvWorld(t)
	app := w.env.App
	// The prober shares a private room with bob (who is in the secret group)
	// and can list a host app's projects, one of which points at the secret room.
	w.status(w.mallory, http.MethodPost, "/api/chat/private", map[string]any{"user": w.bob.ID()}, http.StatusCreated)
	w.upload(w.mallory)
	projects := hostProjects(t, app, w.secret.id, w.secretMsg, w.alice.ID())

	leaves := map[string][]oracleLeaf{
		"chat_rooms":             {{field: "name", truth: "ZQXsecret plans", text: true}, {field: "description", truth: "ZQXsecret description", text: true}},
		"chat_room_users":        {{field: "user", truth: w.alice.ID()}, {field: "permissions", truth: "can_remove_users", multi: true}},
		"chat_messages":          {{field: "text", truth: "ZQXsecret the launch code", text: true}, {field: "user", truth: w.alice.ID()}},
		"chat_message_reactions": {{field: "reaction", truth: "👍", text: true}},
		"chat_media":             {{field: "file", truth: w.aliceFile, text: true}},
		"chat_message_media":     {{field: "media", truth: w.aliceMedia}},
	}
	starts := []string{"users", "chat_rooms", "chat_room_users", "chat_messages", "chat_message_reactions", "chat_media", "chat_message_media", projects.Name}
	all := make([]*core.Collection, 0, len(starts))
	for _, name := range starts {
		c, err := app.FindCollectionByNameOrId(name)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, c)
	}
	hops := func(c *core.Collection) []oracleHop {
		var out []oracleHop
		for _, f := range c.Fields {
			if rel, ok := f.(*core.RelationField); ok {
				if target := collectionByID(all, rel.CollectionId); target != nil {
					out = append(out, oracleHop{f.GetName(), target})
				}
			}
		}
		for _, other := range all {
			for _, f := range other.Fields {
				if rel, ok := f.(*core.RelationField); ok && rel.CollectionId == c.Id {
					out = append(out, oracleHop{other.Name + "_via_" + f.GetName(), other})
				}
			}
		}
		return out
	}

	// Paths of up to two hops from every start collection that end in a
	// chat collection, and @collection joins of every chat collection.
	type path struct {
		start string
		props []string
		end   *core.Collection
	}
	var paths []path
	var walk func(start string, props []string, c *core.Collection, depth int)
	walk = func(start string, props []string, c *core.Collection, depth int) {
		if leaves[c.Name] != nil {
			paths = append(paths, path{start, slices.Clone(props), c})
		}
		if depth == 2 {
			return
		}
		for _, h := range hops(c) {
			walk(start, append(props, h.prop), h.target, depth+1)
		}
	}
	for _, c := range all {
		walk(c.Name, nil, c, 0)
		for name := range leaves {
			paths = append(paths, path{c.Name, []string{"@collection", name}, collectionByName(all, name)})
		}
	}
	// The issue's own example, three hops deep.
	paths = append(paths, path{"users", strings.Split("chat_room_users_via_user.room.chat_room_users_via_room", "."), collectionByName(all, "chat_room_users")})

	operators := []string{"=", "!=", "~", "!~", "?=", "?!=", "?~", "?!~", "<", ">"}
	type probe struct{ start, filter, yes, no string }
	var probes []probe
	for _, p := range paths {
		for _, leaf := range leaves[p.end.Name] {
			ident := strings.Join(append(slices.Clone(p.props), leaf.field), ".")
			forms := []string{ident}
			if leaf.text {
				forms = append(forms, ident+":lower")
			}
			if leaf.multi {
				forms = append(forms, ident+":each")
			}
			for _, form := range forms {
				for _, op := range operators {
					yes := leaf.truth
					if strings.Contains(op, "~") {
						yes = leaf.truth[:len(leaf.truth)/2+1]
					}
					if strings.HasSuffix(form, ":lower") {
						yes = strings.ToLower(yes)
					}
					probes = append(probes, probe{p.start, form + " " + op + " {:X}", yes, nearMiss(yes)})
				}
			}
			if leaf.multi {
				probes = append(probes, probe{p.start, ident + ":length = {:X}", "9", "8"})
			}
		}
		if len(p.props) > 0 && !strings.HasPrefix(p.props[0], "@") {
			probes = append(probes, probe{p.start, strings.Join(p.props, ".") + ":length > {:X}", "1", "2"})
		}
	}

	answer := func(start, filter, guess string) string {
		f := strings.ReplaceAll(filter, "{:X}", "'"+strings.ReplaceAll(guess, "'", "\\'")+"'")
		res := w.do(w.mallory, http.MethodGet, "/api/collections/"+start+"/records?perPage=200&filter="+url.QueryEscape(f), nil)
		var ids []string
		for _, it := range res.Items() {
			id, _ := it["id"].(string)
			ids = append(ids, id)
		}
		sort.Strings(ids)
		total := res.JSON()["totalItems"]
		return fmt.Sprint(res.Status, " total=", total, " ", ids)
	}
	// PocketBase sleeps a random while after repeated empty filtered lists
	// (a timing-attack precaution): ask in parallel.
	var refused atomic.Int64
	queue := make(chan probe)
	var wg sync.WaitGroup
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range queue {
				yes, no := answer(p.start, p.filter, p.yes), answer(p.start, p.filter, p.no)
				if yes != no {
					t.Errorf("%s?filter=%s answers a guess: true %q → %s; false %q → %s", p.start, p.filter, p.yes, yes, p.no, no)
				}
				if strings.HasPrefix(yes, "400") {
					refused.Add(1)
				}
			}
		}()
	}
	for _, p := range probes {
		queue <- p
	}
	close(queue)
	wg.Wait()
	t.Logf("%d paths, %d probes (%d requests): %d refused with 400, %d answered alike", len(paths), len(probes), 2*len(probes), refused.Load(), int64(len(probes))-refused.Load())

	// The same paths as realtime subscription options: refused alike.
	sse := w.env.Connect(w.mallory)
	defer sse.Close()
	for _, start := range []string{"users", "chat_rooms", projects.Name} {
		filter := "@collection.chat_messages.text !~ 'ZQXsecret'"
		sub := start + "/*?options=" + url.QueryEscape(`{"query":{"filter":"`+filter+`"}}`)
		if res := sse.Subscribe(sub); res.Status != http.StatusBadRequest {
			t.Errorf("realtime %s: status %d, want 400: %s", sub, res.Status, res)
		}
	}
	if res := sse.Subscribe("users/*?options=" + url.QueryEscape(`{"query":{"filter":"chat_messages_via_user.text !~ 'ZQX'"}}`)); res.Status != http.StatusBadRequest {
		t.Errorf("realtime back-relation filter: status %d, want 400: %s", res.Status, res)
	}
	if res := sse.Subscribe("users/*?options=" + url.QueryEscape(`{"query":{"filter":"name != ''"}}`)); res.Status != http.StatusNoContent {
		t.Errorf("realtime plain filter: status %d, want 204: %s", res.Status, res)
	}
}

// TestOracleSortHiddenUserFields: sorting users by a field the caller may
// not read is refused (or, for fields PocketBase hides, refused by it), so
// the order of hidden values never shows.
func TestOracleSortHiddenUserFields(t *testing.T) {
	w := newAdvWorld(t)
	users, err := w.env.App.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}
	var hidden []string
	for _, f := range users.Fields {
		if f.GetHidden() || f.GetName() == core.FieldNameEmail {
			hidden = append(hidden, f.GetName())
		}
	}
	if !slices.Contains(hidden, "email") || !slices.Contains(hidden, "password") || !slices.Contains(hidden, "tokenKey") {
		t.Fatalf("hidden fields of users: %v", hidden)
	}
	for _, field := range hidden {
		for _, dir := range []string{"", "-"} {
			for _, url := range []string{
				advUsersURL + "?sort=" + dir + field,
				advMessagesURL + "?sort=" + dir + "user." + field,
				advRoomsURL + "?sort=" + dir + "created_by." + field,
			} {
				if res := w.do(w.mallory, http.MethodGet, url, nil); res.Status != http.StatusBadRequest {
					t.Errorf("%s: status %d, want 400: %s", url, res.Status, res)
				}
			}
		}
	}
	// Superusers may sort by anything; users by what they can read.
	if res := w.do(w.super, http.MethodGet, advUsersURL+"?sort=email", nil); res.Status != http.StatusOK {
		t.Errorf("superuser sort by email: %d %s", res.Status, res)
	}
	if res := w.do(w.mallory, http.MethodGet, advUsersURL+"?sort=-created,id", nil); res.Status != http.StatusOK {
		t.Errorf("sort by created: %d %s", res.Status, res)
	}
}

// TestOracleAllowedPaths: the guard leaves alone what cannot widen what the
// caller sees, so ordinary client queries keep working.
func TestOracleAllowedPaths(t *testing.T) {
	w := newAdvWorld(t)
	for _, c := range []struct {
		user *chattest.User
		url  string
		want int // items
	}{
		{w.bob, advMessagesURL + "?filter=" + url.QueryEscape("room.name ~ 'ZQXsecret' && system = ''"), 3},
		{w.bob, advReactionsURL + "?filter=" + url.QueryEscape("message.room.name ~ 'ZQXsecret' && message.user.id = '"+w.alice.ID()+"'"), 2},
		{w.bob, advLinksURL + "?filter=" + url.QueryEscape("message.room = '"+w.secret.id+"' && media.id != ''"), 2},
		{w.bob, advMessagesURL + "?filter=" + url.QueryEscape("room = '"+w.secret.id+"' && system = ''") + "&sort=-created,user.name", 3},
		{w.bob, advMembersURL + "?filter=" + url.QueryEscape("room.id = '"+w.secret.id+"'"), 2},
		{w.mallory, advRoomsURL + "?filter=" + url.QueryEscape("is_public = true && created_by.name != ''"), 3},
	} {
		res := w.do(c.user, http.MethodGet, c.url, nil)
		if res.Status != http.StatusOK || len(res.Items()) != c.want {
			t.Errorf("%s: status %d, %d items, want 200 with %d: %s", c.url, res.Status, len(res.Items()), c.want, res)
		}
	}
	// Refused paths name the parameter.
	res := w.do(w.mallory, http.MethodGet, advUsersURL+"?filter="+url.QueryEscape("chat_messages_via_user.text !~ 'x'"), nil)
	data, _ := res.JSON()["data"].(map[string]any)
	if res.Status != http.StatusBadRequest || data["filter"] == nil {
		t.Errorf("refused filter: %d %s", res.Status, res)
	}
}

// hostProjects creates a host app's collection that any signed-in user may
// list, with relations into chat: one to a room, many to rooms, one to a
// message, and one to a user.
func hostProjects(t *testing.T, app core.App, room, message, user string) *core.Collection {
	t.Helper()
	rooms, _ := app.FindCollectionByNameOrId("chat_rooms")
	messages, _ := app.FindCollectionByNameOrId("chat_messages")
	users, _ := app.FindCollectionByNameOrId("users")
	c := core.NewBaseCollection("projects")
	c.ListRule = types.Pointer(`@request.auth.id != ""`)
	c.ViewRule = types.Pointer(`@request.auth.id != ""`)
	c.Fields.Add(
		&core.TextField{Name: "title"},
		&core.RelationField{Name: "room", CollectionId: rooms.Id, MaxSelect: 1},
		&core.RelationField{Name: "rooms", CollectionId: rooms.Id, MaxSelect: 5},
		&core.RelationField{Name: "pinned", CollectionId: messages.Id, MaxSelect: 1},
		&core.RelationField{Name: "lead", CollectionId: users.Id, MaxSelect: 1},
	)
	if err := app.Save(c); err != nil {
		t.Fatal(err)
	}
	for _, title := range []string{"apollo", "gemini"} {
		p := core.NewRecord(c)
		p.Set("title", title)
		if title == "apollo" {
			p.Set("room", room)
			p.Set("rooms", []string{room})
			p.Set("pinned", message)
		}
		p.Set("lead", user)
		if err := app.Save(p); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// nearMiss is guess with its last character changed: a false guess that
// compares with every other value as the true one does.
func nearMiss(guess string) string {
	r := []rune(guess)
	r[len(r)-1]++
	return string(r)
}

func collectionByID(all []*core.Collection, id string) *core.Collection {
	for _, c := range all {
		if c.Id == id {
			return c
		}
	}
	return nil
}

func collectionByName(all []*core.Collection, name string) *core.Collection {
	for _, c := range all {
		if c.Name == name {
			return c
		}
	}
	return nil
}
