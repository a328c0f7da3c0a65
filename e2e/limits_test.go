package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
	"github.com/pbchat/pbchat/ratelimit"
)

// SPEC v2 "Confidentiality": the unauthenticated surface is limited per IP
// by default, POST /api/chat/private counts toward a user's limits, and a
// request refused for a limit answers 429 with Retry-After at the top level
// (records API, batch, custom routes, realtime connects).

// limitsWindow is every limit's window here: short, so that the test waits
// for one window to pass, not for minutes.
const limitsWindow = 3 * time.Second

// limitsConfig allows 2 of everything per window.
var limitsConfig = func() chatmodule.Config {
	two := chatmodule.RateLimit{MaxRequests: 2, Duration: limitsWindow}
	return chatmodule.Config{RateLimits: chatmodule.RateLimits{
		Messages: two, Reactions: two, Media: two, Writes: two,
		SignUps: two, SignIns: two, AccountEmails: two, RealtimeConnects: two,
	}}
}()

// limitsWorld: a group of five users, each with a budget of their own for a
// per-user kind; X-Forwarded-For is trusted, so a request can come from
// another address.
type limitsWorld struct {
	*rig
	ann, ben, cat, dan, eve *chattest.User
	room                    string
	signUps, batches        atomic.Int64
}

func newLimitsWorld(t *testing.T, config chatmodule.Config) *limitsWorld {
	t.Helper()
	r := newRig(t, config)
	w := &limitsWorld{rig: r}
	w.ann, w.ben, w.cat, w.dan, w.eve = r.NewUser("ann"), r.NewUser("ben"), r.NewUser("cat"), r.NewUser("dan"), r.NewUser("eve")
	// Set up in Go: no request is counted before the test's own.
	save := func(collection string, fields map[string]any) string {
		c, err := r.App.FindCollectionByNameOrId(collection)
		if err != nil {
			t.Fatal(err)
		}
		record := core.NewRecord(c)
		for k, v := range fields {
			record.Set(k, v)
		}
		if err := r.App.Save(record); err != nil {
			t.Fatalf("save %s: %v", collection, err)
		}
		return record.Id
	}
	w.room = save("chat_rooms", map[string]any{"type": "group", "name": "limits", "created_by": w.ann.ID()})
	for _, u := range []*chattest.User{w.ben, w.cat, w.dan, w.eve} {
		save("chat_room_users", map[string]any{"room": w.room, "user": u.ID(), "permissions": []string{"can_create_messages"}})
	}
	w.editSettings(func(s *core.Settings) { s.TrustedProxy.Headers = []string{"X-Forwarded-For"} })
	return w
}

func (w *limitsWorld) editSettings(fn func(s *core.Settings)) {
	w.t.Helper()
	s, err := w.App.Settings().Clone()
	if err != nil {
		w.t.Fatal(err)
	}
	fn(s)
	if err := w.App.Save(s); err != nil {
		w.t.Fatal(err)
	}
}

// send is one request as user ("" ip: from 127.0.0.1). A realtime stream is
// closed as soon as its status is known.
func (w *limitsWorld) send(t testing.TB, user *chattest.User, ip, method, path string, body any) (*chattest.Response, http.Header) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reader io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.Server.URL+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != nil {
		req.Header.Set("Authorization", user.Token)
	}
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if method == http.MethodGet && path == "/api/realtime" && res.StatusCode == http.StatusOK {
		return &chattest.Response{Status: res.StatusCode}, res.Header // a stream: never ends by itself
	}
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &chattest.Response{Status: res.StatusCode, Body: data}, res.Header
}

// limitKind is one kind of limited request.
type limitKind struct {
	name  string
	label string
	ok    int  // the status of an allowed request
	perIP bool // counted per client IP (else per user)
	send  func(t testing.TB, w *limitsWorld, ip string) (*chattest.Response, http.Header)
	// unwritten checks that the refused request left nothing (nil: it writes nothing anyway).
	unwritten func(t testing.TB, w *limitsWorld, refused *chattest.Response)
}

var limitKinds = []limitKind{
	{
		name: "sign-up", label: ratelimit.LabelSignUps, ok: http.StatusOK, perIP: true,
		send: func(t testing.TB, w *limitsWorld, ip string) (*chattest.Response, http.Header) {
			email := fmt.Sprintf("signup%d@example.com", w.signUps.Add(1))
			return w.send(t, nil, ip, http.MethodPost, "/api/collections/users/records",
				map[string]any{"email": email, "password": "password-123", "passwordConfirm": "password-123"})
		},
		unwritten: func(t testing.TB, w *limitsWorld, _ *chattest.Response) {
			if n := w.Count("users", fmt.Sprintf("email = 'signup%d@example.com'", w.signUps.Load())); n != 0 {
				t.Fatalf("the refused sign-up created the account")
			}
		},
	},
	{
		name: "sign-in", label: ratelimit.LabelSignIns, ok: http.StatusOK, perIP: true,
		send: func(t testing.TB, w *limitsWorld, ip string) (*chattest.Response, http.Header) {
			return w.send(t, nil, ip, http.MethodPost, "/api/collections/users/auth-with-password",
				map[string]any{"identity": "ann@example.com", "password": "password-ann"})
		},
		unwritten: func(t testing.TB, _ *limitsWorld, refused *chattest.Response) {
			if refused.Str("token") != "" {
				t.Fatalf("the refused sign-in gave a token")
			}
		},
	},
	{
		name: "password reset e-mail", label: ratelimit.LabelAccountEmails, ok: http.StatusNoContent, perIP: true,
		send: func(t testing.TB, w *limitsWorld, ip string) (*chattest.Response, http.Header) {
			return w.send(t, nil, ip, http.MethodPost, "/api/collections/users/request-password-reset",
				map[string]any{"email": "nobody@example.com"})
		},
	},
	{
		name: "realtime connect", label: ratelimit.LabelRealtimeConnects, ok: http.StatusOK, perIP: true,
		send: func(t testing.TB, w *limitsWorld, ip string) (*chattest.Response, http.Header) {
			return w.send(t, nil, ip, http.MethodGet, "/api/realtime", nil)
		},
	},
	{
		name: "records API", label: ratelimit.LabelMessages, ok: http.StatusOK,
		send: func(t testing.TB, w *limitsWorld, ip string) (*chattest.Response, http.Header) {
			return w.send(t, w.ben, ip, http.MethodPost, rigMessages, map[string]any{"room": w.room, "text": "records"})
		},
		unwritten: limitsNoMessage("records"),
	},
	{
		name: "batch", label: ratelimit.LabelMessages, ok: http.StatusOK,
		send: func(t testing.TB, w *limitsWorld, ip string) (*chattest.Response, http.Header) {
			// An operation no limit counts (cat renames herself), then a message.
			name := fmt.Sprintf("cat %d", w.batches.Add(1))
			return w.send(t, w.cat, ip, http.MethodPost, "/api/batch", map[string]any{"requests": []any{
				map[string]any{"method": "PATCH", "url": "/api/collections/users/records/" + w.cat.ID(), "body": map[string]any{"name": name}},
				map[string]any{"method": "POST", "url": rigMessages, "body": map[string]any{"room": w.room, "text": "batch"}},
			}})
		},
		unwritten: func(t testing.TB, w *limitsWorld, _ *chattest.Response) {
			limitsNoMessage("batch")(t, w, nil)
			cat, err := w.App.FindRecordById("users", w.cat.ID())
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("cat %d", w.batches.Load()-1); cat.GetString("name") != want {
				t.Fatalf("cat is named %q, want %q: the refused batch wrote its first operation", cat.GetString("name"), want)
			}
		},
	},
	{
		name: "custom route", label: ratelimit.LabelWrites, ok: http.StatusOK,
		send: func(t testing.TB, w *limitsWorld, ip string) (*chattest.Response, http.Header) {
			return w.send(t, w.dan, ip, http.MethodPost, "/api/chat/rooms/"+w.room+"/read", nil)
		},
	},
	{
		name: "private room route", label: ratelimit.LabelWrites, ok: http.StatusOK,
		send: func(t testing.TB, w *limitsWorld, ip string) (*chattest.Response, http.Header) {
			res, header := w.send(t, w.eve, ip, http.MethodPost, "/api/chat/private", map[string]any{"user": w.ann.ID()})
			if res.Status == http.StatusCreated {
				res.Status = http.StatusOK // the first call creates the room
			}
			return res, header
		},
	},
}

// limitsNoMessage: the refused messages (text) were not stored, the allowed ones were.
func limitsNoMessage(text string) func(t testing.TB, w *limitsWorld, _ *chattest.Response) {
	return func(t testing.TB, w *limitsWorld, _ *chattest.Response) {
		if n := w.Count("chat_messages", "text = '"+text+"'"); n != 2 {
			t.Fatalf("%d %q messages stored, want the 2 allowed ones", n, text)
		}
	}
}

// limitsExpect429 checks a refusal: 429 at the top level naming the rule,
// with Retry-After in whole seconds within the window. It returns when the
// window ends.
func limitsExpect429(t testing.TB, res *chattest.Response, header http.Header, label string) time.Time {
	t.Helper()
	if res.Status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", res.Status, res)
	}
	if msg := res.Str("message"); !strings.Contains(msg, label) {
		t.Errorf("429 message %q does not name the rule %s", msg, label)
	}
	seconds, err := strconv.Atoi(header.Get("Retry-After"))
	if err != nil || seconds < 1 || time.Duration(seconds)*time.Second > limitsWindow {
		t.Fatalf("Retry-After = %q, want 1..%d seconds", header.Get("Retry-After"), int(limitsWindow/time.Second))
	}
	return time.Now().Add(time.Duration(seconds) * time.Second)
}

func TestLimits(t *testing.T) {
	w := newLimitsWorld(t, limitsConfig)
	var windowsEnd time.Time
	for _, k := range limitKinds {
		t.Run(k.name, func(t *testing.T) {
			for i := 0; i < 2; i++ {
				if res, _ := k.send(t, w, ""); res.Status != k.ok {
					t.Fatalf("request %d within the limit: status %d, want %d: %s", i+1, res.Status, k.ok, res)
				}
			}
			res, header := k.send(t, w, "")
			if end := limitsExpect429(t, res, header, k.label); end.After(windowsEnd) {
				windowsEnd = end
			}
			if k.unwritten != nil {
				k.unwritten(t, w, res)
			}
			if k.perIP {
				// Another address has a budget of its own.
				if res, _ := k.send(t, w, "203.0.113.9"); res.Status != k.ok {
					t.Fatalf("from another IP: status %d, want %d: %s", res.Status, k.ok, res)
				}
			}
		})
	}

	// Everybody behind the exhausted address (a NAT) chats on: the per-IP
	// limits count sign-ups, sign-ins, account e-mails and realtime connects,
	// never a signed-in user's chat use.
	t.Run("signed-in users behind the limited address", func(t *testing.T) {
		for _, step := range []struct {
			method, path string
			body         any
			status       int
		}{
			{http.MethodPost, rigMessages, map[string]any{"room": w.room, "text": "from the same address"}, http.StatusOK},
			{http.MethodGet, rigMessages, nil, http.StatusOK},
			{http.MethodGet, "/api/chat/rooms", nil, http.StatusOK},
			{http.MethodGet, "/api/chat/unread", nil, http.StatusOK},
			{http.MethodPost, "/api/chat/rooms/" + w.room + "/read", nil, http.StatusOK},
			{http.MethodPost, "/api/collections/users/auth-refresh", nil, http.StatusOK},
		} {
			if res, _ := w.send(t, w.ann, "", step.method, step.path, step.body); res.Status != step.status {
				t.Fatalf("%s %s: status %d, want %d: %s", step.method, step.path, res.Status, step.status, res)
			}
		}
	})

	// Once the window has passed, every kind is allowed again.
	t.Run("after the window", func(t *testing.T) {
		time.Sleep(time.Until(windowsEnd) + 100*time.Millisecond)
		for _, k := range limitKinds {
			if res, _ := k.send(t, w, ""); res.Status != k.ok {
				t.Errorf("%s after the window: status %d, want %d: %s", k.name, res.Status, k.ok, res)
			}
		}
	})
}

// PocketBase's excluded IPs (Dashboard → Settings → Rate limits) are never
// limited, per IP or per user; the rest still are.
func TestLimitsExcludedIP(t *testing.T) {
	w := newLimitsWorld(t, limitsConfig)
	w.editSettings(func(s *core.Settings) { s.RateLimits.ExcludedIPs = []string{"203.0.113.0/24"} })
	for _, k := range limitKinds {
		t.Run(k.name, func(t *testing.T) {
			for i := 0; i < 4; i++ {
				if res, _ := k.send(t, w, "203.0.113.10"); res.Status != k.ok {
					t.Fatalf("request %d from an excluded IP: status %d, want %d: %s", i+1, res.Status, k.ok, res)
				}
			}
		})
	}
	// Not excluded: counted (the budgets above were not spent).
	for i := 0; i < 2; i++ {
		res, _ := w.send(t, nil, "198.51.100.1", http.MethodPost, "/api/collections/users/request-password-reset", map[string]any{"email": "x@example.com"})
		w.expect(res, http.StatusNoContent, "reset e-mail from an address that is not excluded")
	}
	res, header := w.send(t, nil, "198.51.100.1", http.MethodPost, "/api/collections/users/request-password-reset", map[string]any{"email": "x@example.com"})
	limitsExpect429(t, res, header, ratelimit.LabelAccountEmails)
}

// Without configuration the limits are on: the defaults allow 10 sign-ups and
// 5 account e-mails per address, then 429; RateLimits.Disabled turns them off.
func TestLimitsDefaults(t *testing.T) {
	w := newLimitsWorld(t, chatmodule.Config{})
	kinds := map[string]limitKind{}
	for _, k := range limitKinds {
		kinds[k.name] = k
	}
	for _, c := range []struct {
		kind    string
		allowed int
	}{{"sign-up", 10}, {"password reset e-mail", 5}} {
		k := kinds[c.kind]
		for i := 0; i < c.allowed; i++ {
			if res, _ := k.send(t, w, ""); res.Status != k.ok {
				t.Fatalf("%s %d of %d: status %d: %s", c.kind, i+1, c.allowed, res.Status, res)
			}
		}
		res, header := k.send(t, w, "")
		if res.Status != http.StatusTooManyRequests || header.Get("Retry-After") == "" {
			t.Fatalf("%s %d: status %d (Retry-After %q), want 429 by default", c.kind, c.allowed+1, res.Status, header.Get("Retry-After"))
		}
	}

	off := newLimitsWorld(t, chatmodule.Config{RateLimits: chatmodule.RateLimits{Disabled: true}})
	for _, name := range []string{"password reset e-mail", "realtime connect", "sign-in"} {
		k := kinds[name]
		for i := 0; i < 35; i++ {
			if res, _ := k.send(t, off, ""); res.Status != k.ok {
				t.Fatalf("%s %d with RateLimits.Disabled: status %d: %s", name, i+1, res.Status, res)
			}
		}
	}
}
