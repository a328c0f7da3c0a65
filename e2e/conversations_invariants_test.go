package e2e

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

// SPEC "Version 2 → Conversations", invariants that hold however a record is
// written (e2e/invariants_test.go's two paths): a reply or thread parent is a
// message of the same room (and a thread's a root), every mention is a member,
// and a banned user cannot be added. (A system message edited is refused in
// e2e/conversations_pins_test.go, TestSystemMessages, through the same two
// paths.) Each is tried through the dashboard (superuser
// HTTP, which bypasses permissions but not invariants) and through Go
// (env.App.Save/Delete); nothing may be written either way.

// convInvariant is one write that breaks an invariant, in both paths.
type convInvariant struct {
	name      string
	setup     func(t *testing.T, w *rigWorld) string
	dashboard func(w *rigWorld, admin *chattest.User, arg string) *chattest.Response
	goWrite   func(w *rigWorld, arg string) error
	status    int    // the dashboard's answer: 400 (data names name) or 403 (the body names name)
	refusal   string // the field or word the refusal names
}

func TestConversationsInvariants(t *testing.T) {
	post, patch := http.MethodPost, http.MethodPatch
	none := func(*testing.T, *rigWorld) string { return "" }
	// message is a new group message by alice through Go, with extra fields.
	message := func(w *rigWorld, extra map[string]any) map[string]any {
		fields := map[string]any{"room": w.group, "user": w.alice.ID(), "text": "broken"}
		for k, v := range extra {
			fields[k] = v
		}
		return fields
	}
	// threadReply: bob replies in aliceMsg's thread (through the API).
	threadReply := func(t *testing.T, w *rigWorld) string {
		res := w.Do(w.bob, post, rigMessages, map[string]any{"room": w.group, "text": "in the thread", "thread": w.aliceMsg})
		w.in(t).expect(res, http.StatusOK, "thread reply")
		return res.Str("id")
	}

	cases := []convInvariant{
		{
			name:  "reply to a message of another room",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, post, rigMessages, message(w, map[string]any{"reply_to": w.eveMsg}))
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveNew("chat_messages", message(w, map[string]any{"reply_to": w.eveMsg}))
			},
			status: 400, refusal: "reply_to",
		},
		{
			name:  "reply moved to a message of another room",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, patch, rigMessages+"/"+w.bobMsg, map[string]any{"reply_to": w.eveMsg})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveChange("chat_messages", w.bobMsg, map[string]any{"reply_to": w.eveMsg})
			},
			status: 400, refusal: "reply_to",
		},
		{
			name:  "thread root in another room",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, post, rigMessages, message(w, map[string]any{"thread": w.eveMsg}))
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveNew("chat_messages", message(w, map[string]any{"thread": w.eveMsg}))
			},
			status: 400, refusal: "thread",
		},
		{
			name:  "thread under a thread reply",
			setup: threadReply,
			dashboard: func(w *rigWorld, admin *chattest.User, reply string) *chattest.Response {
				return w.Do(admin, post, rigMessages, message(w, map[string]any{"thread": reply}))
			},
			goWrite: func(w *rigWorld, reply string) error {
				return w.saveNew("chat_messages", message(w, map[string]any{"thread": reply}))
			},
			status: 400, refusal: "thread",
		},
		{
			name:  "mention of a non-member",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, post, rigMessages, message(w, map[string]any{"mentions": []string{w.bob.ID(), w.dave.ID()}}))
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveNew("chat_messages", message(w, map[string]any{"mentions": []string{w.bob.ID(), w.dave.ID()}}))
			},
			status: 400, refusal: "mentions",
		},
		{
			name:  "mention of a member of another room, added by an edit",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, patch, rigMessages+"/"+w.aliceMsg, map[string]any{"mentions": []string{w.eve.ID()}})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveChange("chat_messages", w.aliceMsg, map[string]any{"mentions": []string{w.eve.ID()}})
			},
			status: 400, refusal: "mentions",
		},
		{
			name: "banned user added",
			setup: func(t *testing.T, w *rigWorld) string {
				// dave is banned from the group for a day.
				ban := w.newRecord("chat_room_bans", map[string]any{
					"room": w.group, "user": w.dave.ID(), "reason": "spam", "created_by": w.alice.ID(),
					"until": types.NowDateTime().Add(24 * time.Hour),
				})
				if err := w.App.Save(ban); err != nil {
					t.Fatalf("ban dave: %v", err)
				}
				return ban.Id
			},
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, post, rigMembers, map[string]any{"room": w.group, "user": w.dave.ID()})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveNew("chat_room_users", map[string]any{"room": w.group, "user": w.dave.ID()})
			},
			status: 403, refusal: "banned",
		},
	}

	w := newRigWorld(t, chatmodule.Config{})
	admin := w.Superuser()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			arg := tc.setup(t, w)

			t.Run("dashboard", func(t *testing.T) {
				r := &rig{Env: w.Env, t: t}
				before := r.snapshot()
				res := tc.dashboard(w, admin, arg)
				convExpectRefusal(t, res, tc.status, tc.refusal)
				r.expectSnapshot(before)
			})
			t.Run("go", func(t *testing.T) {
				r := &rig{Env: w.Env, t: t}
				before := r.snapshot()
				err := tc.goWrite(w, arg)
				if err == nil {
					t.Fatalf("Go write succeeded, want the invariant to refuse it")
				}
				var fields validation.Errors
				if !(errors.As(err, &fields) && fields[tc.refusal] != nil) && !strings.Contains(strings.ToLower(err.Error()), tc.refusal) {
					t.Fatalf("Go write refused with %q, want it to name %s", err, tc.refusal)
				}
				r.expectSnapshot(before)
			})
		})
	}
}

// convExpectRefusal: 400 with a field error on name, or 403 whose body names it.
func convExpectRefusal(t *testing.T, res *chattest.Response, status int, name string) {
	t.Helper()
	if status == http.StatusBadRequest {
		rigExpectField(t, res, name)
		return
	}
	if res.Status != status || !strings.Contains(strings.ToLower(res.String()), name) {
		t.Fatalf("status %d, want %d naming %s: %s", res.Status, status, name, res)
	}
}

// A ban lasts until its `until`: once it passes, the user may be added
// again, through the dashboard and Go alike; deleting the ban lifts it too.
func TestConversationsInvariantsBanExpires(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{})
	admin := w.Superuser()
	ban := func(u *chattest.User, until types.DateTime) *core.Record {
		t.Helper()
		record := w.newRecord("chat_room_bans", map[string]any{
			"room": w.group, "user": u.ID(), "reason": "spam", "created_by": w.alice.ID(), "until": until,
		})
		if err := w.App.Save(record); err != nil {
			t.Fatalf("ban: %v", err)
		}
		return record
	}

	// An expired ban: the dashboard adds dave, Go adds eve. A ban is made
	// for the future; the hour passes in the database.
	for _, u := range []*chattest.User{w.dave, w.eve} {
		b := ban(u, types.NowDateTime().Add(time.Hour))
		if _, err := w.App.DB().NewQuery("UPDATE chat_room_bans SET until = {:until} WHERE id = {:id}").
			Bind(dbx.Params{"until": types.NowDateTime().Add(-time.Minute).String(), "id": b.Id}).Execute(); err != nil {
			t.Fatal(err)
		}
	}
	w.expect(w.Do(admin, http.MethodPost, rigMembers, map[string]any{"room": w.group, "user": w.dave.ID()}), http.StatusOK, "add dave after the ban expired")
	if err := w.saveNew("chat_room_users", map[string]any{"room": w.group, "user": w.eve.ID()}); err != nil {
		t.Fatalf("Go: add eve after the ban expired: %v", err)
	}

	// A lifted ban: carol, banned forever (removed from the group), is added
	// back once the ban is deleted.
	forever := ban(w.carol, types.DateTime{})
	if n := w.Count("chat_room_users", "room = {:r} && user = {:u}", dbx.Params{"r": w.group, "u": w.carol.ID()}); n != 0 {
		t.Fatalf("carol is still a member after her ban")
	}
	if err := w.saveNew("chat_room_users", map[string]any{"room": w.group, "user": w.carol.ID()}); err == nil {
		t.Fatalf("Go added carol while banned")
	}
	if err := w.App.Delete(forever); err != nil {
		t.Fatal(err)
	}
	w.expect(w.Do(admin, http.MethodPost, rigMembers, map[string]any{"room": w.group, "user": w.carol.ID()}), http.StatusOK, "add carol after unbanning")
}
