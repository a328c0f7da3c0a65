package ratelimit_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
	"github.com/pbchat/pbchat/ratelimit"
)

const (
	rlRooms     = "/api/collections/chat_rooms/records"
	rlMembers   = "/api/collections/chat_room_users/records"
	rlMessages  = "/api/collections/chat_messages/records"
	rlReactions = "/api/collections/chat_message_reactions/records"
	rlMedia     = "/api/collections/chat_media/records"
)

// rlConfig allows 3 of each kind of chat write per user per minute.
var rlConfig = chatmodule.Config{RateLimits: chatmodule.RateLimits{
	Messages:  chatmodule.RateLimit{MaxRequests: 3, Duration: time.Minute},
	Reactions: chatmodule.RateLimit{MaxRequests: 3, Duration: time.Minute},
	Media:     chatmodule.RateLimit{MaxRequests: 3, Duration: time.Minute},
	Writes:    chatmodule.RateLimit{MaxRequests: 3, Duration: time.Minute},
}}

type rlWorld struct {
	env        *chattest.Env
	ann, ben   *chattest.User
	room       string
	annMessage string
}

// newRLWorld: ann's group with ben; one message by ann. Set up in Go so that
// no request is counted before the test's own.
func newRLWorld(t *testing.T, config chatmodule.Config, setup func(core.App) error) *rlWorld {
	t.Helper()
	env := chattest.NewWithSetup(t, config, setup)
	w := &rlWorld{env: env, ann: env.NewUser("ann"), ben: env.NewUser("ben")}
	save := func(collection string, fields map[string]any) string {
		c, err := env.App.FindCollectionByNameOrId(collection)
		if err != nil {
			t.Fatal(err)
		}
		r := core.NewRecord(c)
		for k, v := range fields {
			r.Set(k, v)
		}
		if err := env.App.Save(r); err != nil {
			t.Fatalf("save %s: %v", collection, err)
		}
		return r.Id
	}
	w.room = save("chat_rooms", map[string]any{"type": "group", "name": "limits", "created_by": w.ann.ID()})
	save("chat_room_users", map[string]any{"room": w.room, "user": w.ben.ID(), "permissions": []string{"can_create_messages", "can_edit_own_messages"}})
	w.annMessage = save("chat_messages", map[string]any{"room": w.room, "user": w.ann.ID(), "text": "hello"})
	return w
}

func rlStatus(t *testing.T, res *chattest.Response, want int, what string) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("%s: status %d, want %d: %s", what, res.Status, want, res)
	}
}

func rlExpect429(t *testing.T, res *chattest.Response, label, what string) {
	t.Helper()
	rlStatus(t, res, http.StatusTooManyRequests, what)
	if msg, _ := res.JSON()["message"].(string); !strings.Contains(msg, label) {
		t.Errorf("%s: 429 message %q does not name the rule %s", what, msg, label)
	}
}

func rlRule(t *testing.T, app core.App, label string) (core.RateLimitRule, bool) {
	t.Helper()
	for _, r := range app.Settings().RateLimits.Rules {
		if r.Label == label {
			return r, true
		}
	}
	return core.RateLimitRule{}, false
}

// The module writes its rules into PocketBase's rate limit settings from
// Config, and leaves PocketBase's own (per-IP) switch alone.
func TestRateLimitRulesInstalled(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	want := map[string][2]int64{
		ratelimit.LabelMessages:  {50, 10},
		ratelimit.LabelReactions: {50, 10},
		ratelimit.LabelMedia:     {30, 60},
		ratelimit.LabelWrites:    {100, 10},
	}
	for label, w := range want {
		r, ok := rlRule(t, env.App, label)
		if !ok {
			t.Errorf("no %s rule in PocketBase's settings", label)
			continue
		}
		if int64(r.MaxRequests) != w[0] || r.Duration != w[1] || r.Audience != core.RateLimitRuleAudienceAuth {
			t.Errorf("%s = %+v, want %d per %ds for @auth", label, r, w[0], w[1])
		}
	}
	// The per-IP rules, for everybody (a guest, or a user sending a token along).
	wantIP := map[string][2]int64{
		ratelimit.LabelSignUps:          {10, 3600},
		ratelimit.LabelSignIns:          {30, 60},
		ratelimit.LabelAccountEmails:    {5, 600},
		ratelimit.LabelRealtimeConnects: {120, 60},
	}
	for label, w := range wantIP {
		r, ok := rlRule(t, env.App, label)
		if !ok {
			t.Errorf("no %s rule in PocketBase's settings", label)
			continue
		}
		if int64(r.MaxRequests) != w[0] || r.Duration != w[1] || r.Audience != core.RateLimitRuleAudienceAll {
			t.Errorf("%s = %+v, want %d per %ds for everybody", label, r, w[0], w[1])
		}
	}
	if env.App.Settings().RateLimits.Enabled {
		t.Errorf("pbchat turned on PocketBase's per-IP limiter")
	}
	// PocketBase's factory rules are still there, untouched.
	if _, ok := rlRule(t, env.App, "*:create"); !ok {
		t.Errorf("PocketBase's own rules were dropped")
	}
	// The settings with pbchat's rules pass PocketBase's validation.
	if err := env.App.Settings().RateLimits.Validate(); err != nil {
		t.Errorf("rate limit settings invalid: %v", err)
	}

	// Disabled: no rules, no limit.
	off := chattest.New(t, chatmodule.Config{RateLimits: chatmodule.RateLimits{Disabled: true}})
	for _, label := range []string{ratelimit.LabelMessages, ratelimit.LabelSignIns, ratelimit.LabelRealtimeConnects} {
		if _, ok := rlRule(t, off.App, label); ok {
			t.Errorf("RateLimits.Disabled still added %s", label)
		}
	}
}

// Past each limit the API answers 429; the refused write leaves nothing; the
// budget is per user, not per IP (every request here comes from 127.0.0.1).
func TestRateLimitPerUser(t *testing.T) {
	w := newRLWorld(t, rlConfig, nil)
	env := w.env
	before := env.Count("chat_messages", "")
	for i := 0; i < 3; i++ {
		rlStatus(t, env.Do(w.ben, http.MethodPost, rlMessages, map[string]any{"room": w.room, "text": "m" + strconv.Itoa(i)}), 200, "message within the limit")
	}
	res := env.Do(w.ben, http.MethodPost, rlMessages, map[string]any{"room": w.room, "text": "one too many"})
	rlExpect429(t, res, ratelimit.LabelMessages, "4th message")
	if got := env.Count("chat_messages", ""); got != before+3 {
		t.Fatalf("messages = %d, want %d: the refused one was stored", got, before+3)
	}
	// Ann, from the same IP, has her own budget.
	rlStatus(t, env.Do(w.ann, http.MethodPost, rlMessages, map[string]any{"room": w.room, "text": "ann's turn"}), 200, "another user's message")
	// The superuser is never limited.
	super := env.Superuser()
	for i := 0; i < 5; i++ {
		rlStatus(t, env.Do(super, http.MethodPost, rlMessages, map[string]any{"room": w.room, "user": w.ann.ID(), "text": "admin"}), 200, "superuser message")
	}

	// Reactions, uploads and other writes have their own budgets.
	for i, emoji := range []string{"👍", "🎉", "❤️"} {
		rlStatus(t, env.Do(w.ben, http.MethodPost, rlReactions, map[string]any{"message": w.annMessage, "reaction": emoji}), 200, "reaction "+strconv.Itoa(i))
	}
	rlExpect429(t, env.Do(w.ben, http.MethodPost, rlReactions, map[string]any{"message": w.annMessage, "reaction": "😀"}), ratelimit.LabelReactions, "4th reaction")

	for i := 0; i < 3; i++ {
		rlStatus(t, env.Upload(w.ben, http.MethodPost, rlMedia, nil, chattest.File{Field: "file", Name: "a.txt", Content: []byte("a")}), 200, "upload")
	}
	media := env.Count("chat_media", "")
	rlExpect429(t, env.Upload(w.ben, http.MethodPost, rlMedia, nil, chattest.File{Field: "file", Name: "a.txt", Content: []byte("a")}), ratelimit.LabelMedia, "4th upload")
	if env.Count("chat_media", "") != media {
		t.Fatalf("a refused upload was stored")
	}

	// Other writes: the records API and POST /api/chat/ share one budget.
	rlStatus(t, env.Do(w.ben, http.MethodPost, "/api/chat/rooms/"+w.room+"/read", nil), 200, "mark read")
	rlStatus(t, env.Do(w.ben, http.MethodPost, "/api/chat/rooms/"+w.room+"/typing", nil), 204, "typing")
	rlStatus(t, env.Do(w.ben, http.MethodPost, rlRooms, map[string]any{"type": "group", "name": "ben's"}), 200, "create room")
	rooms := env.Count("chat_rooms", "")
	rlExpect429(t, env.Do(w.ben, http.MethodPost, rlRooms, map[string]any{"type": "group", "name": "ben's 2"}), ratelimit.LabelWrites, "4th write")
	res = env.Do(w.ben, http.MethodPost, "/api/chat/rooms/"+w.room+"/typing", nil)
	rlExpect429(t, res, ratelimit.LabelWrites, "typing past the limit")
	if env.Count("chat_rooms", "") != rooms {
		t.Fatalf("a refused room was stored")
	}
	// Getting (or creating) a private room counts as a write: ben is past
	// his budget, ann has hers.
	carl := env.NewUser("carl")
	rlExpect429(t, env.Do(w.ben, http.MethodPost, "/api/chat/private", map[string]any{"user": carl.ID()}), ratelimit.LabelWrites, "private room past the writes limit")
	rlStatus(t, env.Do(w.ann, http.MethodPost, "/api/chat/private", map[string]any{"user": carl.ID()}), 201, "ann's private room with carl")
	for i := 0; i < 2; i++ {
		rlStatus(t, env.Do(w.ann, http.MethodPost, "/api/chat/private", map[string]any{"user": carl.ID()}), 200, "ann's private room again")
	}
	rlExpect429(t, env.Do(w.ann, http.MethodPost, "/api/chat/private", map[string]any{"user": carl.ID()}), ratelimit.LabelWrites, "ann's 4th private room request")
	// Reads are not chat writes.
	rlStatus(t, env.Do(w.ben, http.MethodGet, rlMessages, nil), 200, "list messages")
	rlStatus(t, env.Do(w.ben, http.MethodGet, "/api/chat/unread", nil), 200, "unread")
}

// The 429 carries Retry-After, in whole seconds up to the window's end.
func TestRateLimitRetryAfter(t *testing.T) {
	w := newRLWorld(t, rlConfig, nil)
	for i := 0; i < 3; i++ {
		w.env.Do(w.ben, http.MethodPost, "/api/chat/rooms/"+w.room+"/read", nil)
	}
	req, _ := http.NewRequest(http.MethodPost, w.env.Server.URL+"/api/chat/rooms/"+w.room+"/read", nil)
	req.Header.Set("Authorization", w.ben.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", res.StatusCode)
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After = %q, want 1..60 seconds", res.Header.Get("Retry-After"))
	}
}

// Every operation of a batch counts: a batch past the limit is refused as a
// whole, with a top-level 429 and Retry-After, and writes nothing.
func TestRateLimitBatch(t *testing.T) {
	w := newRLWorld(t, rlConfig, nil)
	env := w.env
	op := func(text string) map[string]any {
		return map[string]any{"method": "POST", "url": rlMessages, "body": map[string]any{"room": w.room, "text": text}}
	}
	// A batch that fails for another reason keeps PocketBase's 400 (and
	// spends one of ben's 3 messages).
	rlStatus(t, env.Do(w.ben, http.MethodPost, "/api/batch", map[string]any{"requests": []any{op("")}}), http.StatusBadRequest, "batch with an empty message")

	before := env.Count("chat_messages", "")
	res, header := rlDo(t, env, w.ben, http.MethodPost, "/api/batch", map[string]any{"requests": []any{op("1"), op("2"), op("3")}})
	rlExpect429(t, res, ratelimit.LabelMessages, "batch of 3 messages with 2 left")
	if s, err := strconv.Atoi(header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("batch 429: Retry-After = %q, want 1..60 seconds", header.Get("Retry-After"))
	}
	if got := env.Count("chat_messages", ""); got != before {
		t.Fatalf("a refused batch stored %d messages", got-before)
	}
	// The budget was spent by the refused batch: PocketBase counts attempts too.
	rlExpect429(t, env.Do(w.ben, http.MethodPost, rlMessages, map[string]any{"room": w.room, "text": "after"}), ratelimit.LabelMessages, "message after the batch")
}

// rlDo is env.Do that also returns the answer's headers.
func rlDo(t *testing.T, env *chattest.Env, user *chattest.User, method, path string, body any) (*chattest.Response, http.Header) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, env.Server.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if user != nil {
		req.Header.Set("Authorization", user.Token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &chattest.Response{Status: res.StatusCode, Body: data}, res.Header
}

// An operator's rules win: a rule with pbchat's label that exists before
// install is kept; edits in the settings apply at once; a deleted rule lifts
// the limit and is not added back on the next start; excluded IPs are not
// counted.
func TestRateLimitOperatorSettings(t *testing.T) {
	operatorRule := core.RateLimitRule{Label: ratelimit.LabelMessages, MaxRequests: 1, Duration: 3600}
	w := newRLWorld(t, rlConfig, func(app core.App) error {
		s, err := app.Settings().Clone()
		if err != nil {
			return err
		}
		s.RateLimits.Rules = append(s.RateLimits.Rules, operatorRule)
		return app.Save(s)
	})
	env := w.env
	if r, _ := rlRule(t, env.App, ratelimit.LabelMessages); r != operatorRule {
		t.Fatalf("the operator's rule became %+v", r)
	}
	rlStatus(t, env.Do(w.ben, http.MethodPost, rlMessages, map[string]any{"room": w.room, "text": "1"}), 200, "first message")
	rlExpect429(t, env.Do(w.ben, http.MethodPost, rlMessages, map[string]any{"room": w.room, "text": "2"}), ratelimit.LabelMessages, "second message under the operator's rule of 1")

	edit := func(fn func(s *core.Settings)) {
		t.Helper()
		s, err := env.App.Settings().Clone()
		if err != nil {
			t.Fatal(err)
		}
		fn(s)
		if err := env.App.Save(s); err != nil {
			t.Fatal(err)
		}
	}
	// Raising the limit applies to the running app.
	edit(func(s *core.Settings) {
		for i := range s.RateLimits.Rules {
			if s.RateLimits.Rules[i].Label == ratelimit.LabelMessages {
				s.RateLimits.Rules[i].MaxRequests = 2
			}
		}
	})
	rlStatus(t, env.Do(w.ben, http.MethodPost, rlMessages, map[string]any{"room": w.room, "text": "3"}), 200, "message after raising the limit")

	// Deleting the rule lifts the limit, and a restart does not add it back.
	edit(func(s *core.Settings) {
		var kept []core.RateLimitRule
		for _, r := range s.RateLimits.Rules {
			if r.Label != ratelimit.LabelMessages {
				kept = append(kept, r)
			}
		}
		s.RateLimits.Rules = kept
	})
	for i := 0; i < 5; i++ {
		rlStatus(t, env.Do(w.ben, http.MethodPost, rlMessages, map[string]any{"room": w.room, "text": "free"}), 200, "message without a rule")
	}
	// The next start of the same data: a new app on a copy of the data dir.
	restarted, err := tests.NewTestApp(env.App.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Cleanup()
	if err := chatmodule.Register(restarted, rlConfig); err != nil {
		t.Fatal(err)
	}
	if _, ok := rlRule(t, restarted, ratelimit.LabelWrites); !ok {
		t.Fatalf("the copied data dir lost pbchat's other rules")
	}
	if _, ok := rlRule(t, restarted, ratelimit.LabelMessages); ok {
		t.Fatalf("a restart added back the rule the operator deleted")
	}

	// Excluded IPs are not counted (PocketBase's own semantics).
	for i := 0; i < 3; i++ {
		env.Do(w.ben, http.MethodPost, "/api/chat/rooms/"+w.room+"/read", nil)
	}
	rlStatus(t, env.Do(w.ben, http.MethodPost, "/api/chat/rooms/"+w.room+"/read", nil), 429, "4th write")
	edit(func(s *core.Settings) { s.RateLimits.ExcludedIPs = []string{"127.0.0.0/8"} })
	rlStatus(t, env.Do(w.ben, http.MethodPost, "/api/chat/rooms/"+w.room+"/read", nil), 200, "write from an excluded IP")
}
