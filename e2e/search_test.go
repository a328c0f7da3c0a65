package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chattest"
	"github.com/pbchat/pbchat/migrations"
)

// searchAnswer is the body of GET /api/chat/search.
type searchAnswer struct {
	Page       int  `json:"page"`
	PerPage    int  `json:"perPage"`
	TotalItems int  `json:"totalItems"`
	HasMore    bool `json:"hasMore"`
	Items      []struct {
		Message   map[string]any `json:"message"`
		Room      map[string]any `json:"room"`
		Highlight string         `json:"highlight"`
	} `json:"items"`
}

// ids are the answer's message ids, in order.
func (a searchAnswer) ids() []string {
	out := make([]string, len(a.Items))
	for i, item := range a.Items {
		out[i], _ = item.Message["id"].(string)
	}
	return out
}

// searchRig is a rig with three users and rooms of each kind of visibility:
// alice and bob share "ours"; carol alone is in "theirs" and in a public room.
type searchRig struct {
	*rig
	alice, bob, carol   *chattest.User
	ours, theirs, plaza string
}

func newSearchRig(t *testing.T) *searchRig {
	r := &searchRig{rig: newRig(t, chatmodule.Config{})}
	r.alice, r.bob, r.carol = r.NewUser("alice"), r.NewUser("bob"), r.NewUser("carol")
	r.ours = r.createRoom(r.alice, "group", "ours")
	r.addMember(r.alice, r.ours, r.bob, nil)
	r.theirs = r.createRoom(r.carol, "group", "theirs")
	r.plaza = r.createRoom(r.carol, "channel", "plaza")
	r.patch(r.carol, "chat_rooms", r.plaza, map[string]any{"is_public": true})
	return r
}

// search asks GET /api/chat/search as u with params (q, room, page, perPage).
func (r *searchRig) search(u *chattest.User, params ...string) *chattest.Response {
	r.t.Helper()
	query := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		query.Set(params[i], params[i+1])
	}
	return r.Do(u, http.MethodGet, "/api/chat/search?"+query.Encode(), nil)
}

// found searches as u, then writes what is pending into the full-text
// table and searches again: both answers must be the same.
func (r *searchRig) found(u *chattest.User, params ...string) searchAnswer {
	r.t.Helper()
	res := r.search(u, params...)
	r.expect(res, http.StatusOK, "search "+strings.Join(params, " "))
	r.settle()
	var first, second any
	again := r.search(u, params...)
	if json.Unmarshal(res.Body, &first) != nil || json.Unmarshal(again.Body, &second) != nil || !reflect.DeepEqual(first, second) {
		r.t.Errorf("search %v: %s before the pending rows were indexed, %s after", params, res, again)
	}
	var answer searchAnswer
	if err := json.Unmarshal(res.Body, &answer); err != nil {
		r.t.Fatalf("search answer: %v: %s", err, res)
	}
	return answer
}

// settle writes every pending row into the full-text table, as the
// background indexer does.
func (r *searchRig) settle() {
	r.t.Helper()
	if _, err := hooks.IndexPendingSearch(r.App, 1_000_000); err != nil {
		r.t.Fatal(err)
	}
}

// indexRows settles the index and counts its numbered messages, checking
// that it is consistent: one full-text row per message with text.
func (r *searchRig) indexRows() int {
	r.t.Helper()
	r.settle()
	count := func(sql string) int {
		var n int
		if err := r.App.DB().NewQuery(sql).Row(&n); err != nil {
			r.t.Fatal(err)
		}
		return n
	}
	n := count("SELECT count(*) FROM " + migrations.SearchIDsTable)
	if pending := count("SELECT count(*) FROM " + migrations.SearchPendingTable); pending != 0 {
		r.t.Errorf("%d rows still pending", pending)
	}
	withText := count("SELECT count(*) FROM chat_messages WHERE text != ''")
	if ids, fts := count("SELECT count(*) FROM "+migrations.SearchIDsTable+" WHERE message IS NOT NULL AND fts"), count("SELECT count(*) FROM "+migrations.SearchTable+"_docsize"); ids != withText {
		r.t.Errorf("%d messages with text, %d marked indexed (%d full-text rows)", withText, ids, fts)
	}
	if all := count("SELECT count(*) FROM chat_messages"); all != n {
		r.t.Errorf("%d messages, %d numbered", all, n)
	}
	return n
}

// TestSearchScope: a search finds the messages of the caller's rooms and
// nothing else: not another room's, not a public room's the caller is not
// in, not a deleted message, not a room's after the caller left it or after
// it was deleted.
func TestSearchScope(t *testing.T) {
	r := newSearchRig(t)
	mine := r.post(r.bob, r.ours, "the quarterly report is ready")
	r.post(r.carol, r.theirs, "the quarterly report of carol")
	r.post(r.carol, r.plaza, "a public quarterly report")
	gone := r.post(r.alice, r.ours, "an old quarterly report")
	r.remove(r.alice, "chat_messages", gone)

	for _, u := range []*chattest.User{r.alice, r.bob} {
		if got := r.found(u, "q", "quarterly").ids(); !slices.Equal(got, []string{mine}) {
			t.Errorf("%s finds %v, want only %s", u.Record.GetString("name"), got, mine)
		}
	}
	if got := r.found(r.carol, "q", "quarterly").ids(); len(got) != 2 || slices.Contains(got, mine) {
		t.Errorf("carol finds %v, want her two rooms' messages", got)
	}
	// Too short for the index: the scan keeps the same scope.
	if got := r.found(r.alice, "q", "qu").ids(); !slices.Equal(got, []string{mine}) {
		t.Errorf("alice finds %v by a short term, want only %s", got, mine)
	}

	// Removed from the room: bob finds nothing of it any more.
	membership := r.membership(r.ours, r.bob)
	r.remove(r.alice, "chat_room_users", membership.Id)
	if got := r.found(r.bob, "q", "quarterly").ids(); len(got) != 0 {
		t.Errorf("bob finds %v after his removal", got)
	}
	// A deleted room takes its index rows along.
	before := r.indexRows()
	inRoom := r.Count("chat_messages", "room = {:r}", dbx.Params{"r": r.ours}) // its one message and its system messages
	r.remove(r.alice, "chat_rooms", r.ours)
	if got := r.found(r.alice, "q", "quarterly").ids(); len(got) != 0 {
		t.Errorf("alice finds %v in a deleted room", got)
	}
	if after := r.indexRows(); after != before-inRoom {
		t.Errorf("index rows after the room's deletion: %d, want %d", after, before-inRoom)
	}
}

// TestSearchRoomIsNoOracle: room= restricts to one of the caller's rooms; a
// room they are not in answers exactly as one that does not exist.
func TestSearchRoomIsNoOracle(t *testing.T) {
	r := newSearchRig(t)
	mine := r.post(r.alice, r.ours, "meeting at noon")
	other := r.createRoom(r.alice, "group", "other")
	r.post(r.alice, other, "meeting at five")
	if got := r.found(r.alice, "q", "meeting", "room", r.ours).ids(); !slices.Equal(got, []string{mine}) {
		t.Errorf("room=ours finds %v, want %s", got, mine)
	}
	missing := r.search(r.alice, "q", "meeting", "room", "doesnotexist123")
	r.expect(missing, http.StatusNotFound, "search in a room that does not exist")
	for _, room := range []string{r.theirs, r.plaza} {
		res := r.search(r.alice, "q", "meeting", "room", room)
		r.expect(res, http.StatusNotFound, "search in a room alice is not in")
		if string(res.Body) != string(missing.Body) {
			t.Errorf("a non-member's room answers %s, a missing room %s", res, missing)
		}
	}
	r.expect(r.search(nil, "q", "meeting"), http.StatusUnauthorized, "search signed out")
	r.expect(r.search(r.Superuser(), "q", "meeting"), http.StatusForbidden, "search as a superuser")
}

// TestSearchCJK: Chinese, Japanese and Korean text is found by any
// substring, of two characters (the scan) or more (the index).
func TestSearchCJK(t *testing.T) {
	r := newSearchRig(t)
	tokyo := r.post(r.alice, r.ours, "昨日東京タワーに行きました")
	korean := r.post(r.bob, r.ours, "한국어 공부를 합니다")
	chinese := r.post(r.bob, r.ours, "我们明天去北京大学")
	cases := []struct{ q, want, mark string }{
		{"京タ", tokyo, "<mark>京タ</mark>"},
		{"東京タワー", tokyo, "<mark>東京タワー</mark>"},
		{"京タワ", tokyo, "<mark>京タワ</mark>"},
		{"국어", korean, "<mark>국어</mark>"},
		{"한국어", korean, "<mark>한국어</mark>"},
		{"北京大学", chinese, "<mark>北京大学</mark>"},
		{"京大", chinese, "<mark>京大</mark>"},
	}
	for _, c := range cases {
		answer := r.found(r.alice, "q", c.q)
		if got := answer.ids(); !slices.Equal(got, []string{c.want}) {
			t.Errorf("q=%s finds %v, want %s", c.q, got, c.want)
			continue
		}
		if !strings.Contains(answer.Items[0].Highlight, c.mark) {
			t.Errorf("q=%s highlight %q, want %q in it", c.q, answer.Items[0].Highlight, c.mark)
		}
	}
}

// TestSearchHighlight: every matched part is marked, case folded, the rest
// HTML-escaped, and a long text cut around the first match.
func TestSearchHighlight(t *testing.T) {
	r := newSearchRig(t)
	r.post(r.alice, r.ours, `Hello <b>World</b> & "friends": the WORLD says hello`)
	long := strings.Repeat("lorem ipsum ", 50) + "needle in the haystack " + strings.Repeat("dolor sit ", 50)
	r.post(r.alice, r.ours, long)
	r.post(r.alice, r.ours, "Ünïcödé CAFÉ")

	cases := []struct{ q, want string }{
		{"world", `Hello &lt;b&gt;<mark>World</mark>&lt;/b&gt; &amp; &#34;friends&#34;: the <mark>WORLD</mark> says hello`},
		{"hello world", `<mark>Hello</mark> &lt;b&gt;<mark>World</mark>&lt;/b&gt; &amp; &#34;friends&#34;: the <mark>WORLD</mark> says <mark>hello</mark>`},
		{"café", `Ünïcödé <mark>CAFÉ</mark>`},
		{"ÜNÏ", `<mark>Ünï</mark>cödé CAFÉ`},
	}
	for _, c := range cases {
		answer := r.found(r.alice, "q", c.q)
		if len(answer.Items) != 1 || answer.Items[0].Highlight != c.want {
			t.Errorf("q=%s: %+v, want one item highlighted %q", c.q, answer.Items, c.want)
		}
	}
	answer := r.found(r.alice, "q", "needle")
	if len(answer.Items) != 1 {
		t.Fatalf("q=needle: %+v", answer.Items)
	}
	h := answer.Items[0].Highlight
	if !strings.HasPrefix(h, "…") || !strings.HasSuffix(h, "…") || !strings.Contains(h, "<mark>needle</mark> in the haystack") || len([]rune(h)) > 240 {
		t.Errorf("long text highlight %q", h)
	}
	// Every term is required.
	if got := r.found(r.alice, "q", "world haystack").ids(); len(got) != 0 {
		t.Errorf("q=world haystack finds %v", got)
	}
}

// TestSearchEdits: an edit reindexes the message, which keeps its place.
func TestSearchEdits(t *testing.T) {
	r := newSearchRig(t)
	first := r.post(r.alice, r.ours, "pineapple pizza")
	second := r.post(r.alice, r.ours, "pizza margherita")
	r.patch(r.alice, "chat_messages", first, map[string]any{"text": "mango pizza"})
	if got := r.found(r.alice, "q", "pineapple").ids(); len(got) != 0 {
		t.Errorf("the old text still finds %v", got)
	}
	if got := r.found(r.alice, "q", "mango").ids(); !slices.Equal(got, []string{first}) {
		t.Errorf("the new text finds %v, want %s", got, first)
	}
	if got := r.found(r.alice, "q", "pizza").ids(); !slices.Equal(got, []string{second, first}) {
		t.Errorf("pizza finds %v, want %v (newest first, an edit does not move it)", got, []string{second, first})
	}
}

// TestSearchPages: newest first, page by page, hasMore on every page but the
// last, and a page past the end empty; bad parameters answer 400 naming them.
func TestSearchPages(t *testing.T) {
	r := newSearchRig(t)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, r.post(r.alice, r.ours, "standup note "+strconv.Itoa(i)))
	}
	slices.Reverse(ids)
	var got []string
	for page := 1; page <= 3; page++ {
		answer := r.found(r.alice, "q", "standup", "perPage", "2", "page", strconv.Itoa(page))
		if answer.Page != page || answer.PerPage != 2 || answer.TotalItems != -1 || answer.HasMore != (page < 3) {
			t.Errorf("page %d: %+v", page, answer)
		}
		got = append(got, answer.ids()...)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("pages %v, want %v", got, ids)
	}
	if answer := r.found(r.alice, "q", "standup", "page", "99999999999999999999999"); len(answer.Items) != 0 || answer.HasMore {
		t.Errorf("past the end: %+v", answer)
	}
	for _, c := range []struct{ params []string }{
		{[]string{"q", ""}},
		{[]string{"q", "   "}},
		{[]string{"q", strings.Repeat("x", 201)}},
		{[]string{"q", "a b c d e f g h i"}},
		{[]string{"q", "x", "page", "0"}},
		{[]string{"q", "x", "perPage", "abc"}},
	} {
		res := r.search(r.alice, c.params...)
		field := c.params[len(c.params)-2]
		if len(c.params) == 2 {
			field = "q"
		}
		if res.Status != http.StatusBadRequest || !strings.Contains(res.String(), `"`+field+`"`) {
			t.Errorf("%v: %d %s, want 400 naming %s", c.params, res.Status, res, field)
		}
	}
}

// TestSearchIndexInTransaction: the index rows are written in the message's
// transaction: a refused batch leaves none, and the migration indexes the
// messages that were there before it.
func TestSearchIndexInTransaction(t *testing.T) {
	r := newSearchRig(t)
	r.post(r.alice, r.ours, "before the batch")
	before := r.indexRows()
	res := r.Do(r.alice, http.MethodPost, "/api/batch", map[string]any{"requests": []any{
		map[string]any{"method": "POST", "url": "/api/collections/chat_messages/records", "body": map[string]any{"room": r.ours, "text": "batched zebra"}},
		map[string]any{"method": "POST", "url": "/api/collections/chat_messages/records", "body": map[string]any{"room": r.theirs, "text": "batched zebra"}},
	}})
	if res.Status == http.StatusOK {
		t.Fatalf("a batch with a message to a room alice is not in: %s", res)
	}
	if after := r.indexRows(); after != before {
		t.Errorf("index rows %d after a refused batch, want %d", after, before)
	}
	if got := r.found(r.alice, "q", "zebra").ids(); len(got) != 0 {
		t.Errorf("a refused batch's message is found: %v", got)
	}

	// Rebuilt by the migration: the same messages are found.
	for _, sql := range []string{"DROP TABLE " + migrations.SearchTable, "DROP TABLE " + migrations.SearchIDsTable, "DROP TABLE " + migrations.SearchPendingTable} {
		if _, err := r.App.DB().NewQuery(sql).Execute(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.App.DB().Delete("_migrations", dbx.HashExp{"file": "1764000006_pbchat_search.go"}).Execute(); err != nil {
		t.Fatal(err)
	}
	settings, err := chatmodule.Config{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.Run(r.App, settings); err != nil {
		t.Fatal(err)
	}
	if after := r.indexRows(); after != before {
		t.Errorf("index rows %d after the migration, want %d", after, before)
	}
	if got := r.found(r.alice, "q", "batch").ids(); len(got) != 1 {
		t.Errorf("after the migration, q=batch finds %v", got)
	}
}
