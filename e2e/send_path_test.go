package e2e

import (
	"context"
	"database/sql"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chattest"
)

// sendPathWorld is one app with a host app's hooks on chat_messages: what
// each of them saw, by message text.
type sendPathWorld struct {
	*rig
	mu    sync.Mutex
	calls map[string][]string
	// ruleQueries counts the SQL queries of PocketBase's create rule check
	// of a message: none when pbchat's handler serves the request.
	ruleQueries atomic.Int64
}

func newSendPathWorld(t *testing.T, stockHandler bool) *sendPathWorld {
	w := &sendPathWorld{calls: map[string][]string{}}
	note := func(text, what string) {
		w.mu.Lock()
		w.calls[text] = append(w.calls[text], what)
		w.mu.Unlock()
	}
	env := chattest.NewWithSetup(t, chatmodule.Config{}, func(app core.App) error {
		if db, ok := app.ConcurrentDB().(*dbx.DB); ok {
			logged := db.QueryLogFunc
			db.QueryLogFunc = func(ctx context.Context, d time.Duration, sql string, rows *sql.Rows, err error) {
				if strings.Contains(sql, "chat_messages__pb_create__") {
					w.ruleQueries.Add(1)
				}
				if logged != nil {
					logged(ctx, d, sql, rows, err)
				}
			}
		}
		app.OnRecordCreateRequest("chat_messages").BindFunc(func(e *core.RecordRequestEvent) error {
			note(e.Record.GetString("text"), "request")
			if e.Record.GetString("text") == "refused by the host" {
				return e.BadRequestError("The host app says no.", nil)
			}
			return e.Next()
		})
		app.OnRecordCreate("chat_messages").BindFunc(func(e *core.RecordEvent) error {
			note(e.Record.GetString("text"), "create")
			return e.Next()
		})
		app.OnRecordAfterCreateSuccess("chat_messages").BindFunc(func(e *core.RecordEvent) error {
			note(e.Record.GetString("text"), "after success")
			return e.Next()
		})
		if stockHandler {
			// After pbchat's OnServe handler, before the mux is built.
			app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{Priority: 1, Func: func(se *core.ServeEvent) error {
				se.Router.Unbind(hooks.MessageCreateMiddlewareID)
				return se.Next()
			}})
		}
		return nil
	})
	w.rig = &rig{Env: env, t: t}
	return w
}

// TestSendPathMatchesPocketBase: pbchat's create handler for chat messages
// answers every request as PocketBase's own records API does (status and
// body), and runs a host app's request, model and after-success hooks.
func TestSendPathMatchesPocketBase(t *testing.T) {
	type answer struct {
		status int
		body   map[string]any
		calls  []string
	}
	ruleQueries := map[bool]int64{}
	run := func(t *testing.T, stockHandler bool) map[string]answer {
		w := newSendPathWorld(t, stockHandler)
		defer func() { ruleQueries[stockHandler] = w.ruleQueries.Load() }()
		alice, bob, carol := w.NewUser("alice"), w.NewUser("bob"), w.NewUser("carol")
		room := w.createRoom(alice, "group", "g")
		w.addMember(alice, room, bob, []string{}) // no can_create_messages
		cases := []struct {
			name  string
			actor *chattest.User
			body  map[string]any
		}{
			{"member", alice, map[string]any{"room": room, "text": "hello"}},
			{"author set by the server", alice, map[string]any{"room": room, "text": "as bob", "user": bob.ID()}},
			{"guest", nil, map[string]any{"room": room, "text": "guest"}},
			{"non-member", carol, map[string]any{"room": room, "text": "carol"}},
			{"missing permission", bob, map[string]any{"room": room, "text": "bob"}},
			{"unknown room", alice, map[string]any{"room": "nosuchroom12345", "text": "nowhere"}},
			{"missing room", alice, map[string]any{"text": "no room"}},
			{"empty text", alice, map[string]any{"room": room, "text": ""}},
			{"refused by a host hook", alice, map[string]any{"room": room, "text": "refused by the host"}},
		}
		answers := map[string]answer{}
		for _, tc := range cases {
			res := w.Do(tc.actor, http.MethodPost, rigMessages, tc.body)
			body := res.JSON()
			if res.Status == http.StatusOK {
				if body["user"] != tc.actor.ID() || body["room"] != room || body["text"] != tc.body["text"] {
					t.Errorf("%s: saved %v", tc.name, body)
				}
				// ids and times differ between the two apps; the keys do not.
				for _, k := range []string{"id", "room", "user", "created", "updated"} {
					body[k] = "…"
				}
			}
			w.mu.Lock()
			calls := slices.Clone(w.calls[tc.body["text"].(string)])
			w.mu.Unlock()
			answers[tc.name] = answer{res.Status, body, calls}
		}
		return answers
	}
	pbchat := run(t, false)
	stock := run(t, true)
	for _, name := range slices.Sorted(maps.Keys(stock)) {
		got, want := pbchat[name], stock[name]
		if got.status != want.status || !maps.EqualFunc(got.body, want.body, func(a, b any) bool { return sameJSON(a, b) }) {
			t.Errorf("%s: pbchat answers %d %v, PocketBase %d %v", name, got.status, got.body, want.status, want.body)
		}
		if !slices.Equal(got.calls, want.calls) {
			t.Errorf("%s: host hooks ran %v, with PocketBase's handler %v", name, got.calls, want.calls)
		}
	}
	// Both runs served the requests as they should: PocketBase's handler
	// with its create rule's query, pbchat's without.
	if ruleQueries[true] == 0 || ruleQueries[false] != 0 {
		t.Errorf("create rule queries: %d with PocketBase's handler (want some), %d with pbchat's (want none)", ruleQueries[true], ruleQueries[false])
	}
	if got := strings.Join(pbchat["member"].calls, ", "); got != "request, create, after success" {
		t.Errorf("a message sent ran the host's hooks %q", got)
	}
}

// sameJSON compares two decoded JSON values.
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && maps.EqualFunc(x, y, sameJSON)
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, sameJSON)
	default:
		return a == b
	}
}
