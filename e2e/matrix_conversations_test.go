package e2e

// The permission matrix's rows for SPEC "Version 2 → Conversations": replies,
// threads, mentions, pins, bans, silence, slow mode, reports and read
// receipts, written out by hand from the contract like the rest of the table
// (e2e/matrix_test.go), which they join in init.

import (
	"fmt"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chattest"
)

var (
	tooMany    = want{status: 429, text: "slow"}
	isBanned   = want{status: 403, text: "banned"}
	isSilenced = want{status: 403, text: "silenced"}
	// The /api/chat routes require a USERS auth record.
	noAuth   = want{status: 401}
	notAUser = want{status: 403}

	suNoReport   = na("reporter is the caller (a USERS record): a superuser reports nothing")
	anonNoReport = na("anonymous reports nothing")
)

// postCells are "post message"'s outcomes: what every write of a new message
// by the actor answers when nothing else is wrong with it.
var postCells = map[string]cells{
	pm:     {bad(""), nf, ok, ok, no(createMsgs), ok, ok},
	grp:    {bad(""), nf, ok, ok, no(createMsgs), ok, ok},
	chn:    {bad(""), nf, no(createMsgs), ok, no(createMsgs), ok, ok},
	pubGrp: {bad(""), no(createMsgs), ok, ok, no(createMsgs), ok, ok},
	pubChn: {bad(""), no(createMsgs), no(createMsgs), ok, no(createMsgs), ok, ok},
}

// refusedPostCells: an invariant refuses the message (400 on field) to
// everyone allowed to post, superuser included.
func refusedPostCells(field string) map[string]cells {
	b := bad(field)
	return map[string]cells{
		pm:     {bad(""), nf, b, b, no(createMsgs), b, b},
		grp:    {bad(""), nf, b, b, no(createMsgs), b, b},
		chn:    {bad(""), nf, no(createMsgs), b, no(createMsgs), b, b},
		pubGrp: {bad(""), no(createMsgs), b, b, no(createMsgs), b, b},
		pubChn: {bad(""), no(createMsgs), no(createMsgs), b, no(createMsgs), b, b},
	}
}

// pinCells: can_pin_messages gates pinning and unpinning; group and channel
// creators hold it, no member default does; the denied member holds the
// other nine (editing included).
var pinCells = map[string]cells{
	pm:     {nf, nf, no(pinMsgs), ok, no(pinMsgs), no(pinMsgs), ok},
	grp:    {nf, nf, no(pinMsgs), ok, no(pinMsgs), ok, ok},
	chn:    {nf, nf, no(pinMsgs), ok, no(pinMsgs), ok, ok},
	pubGrp: {nf, nf, no(pinMsgs), ok, no(pinMsgs), ok, ok},
	pubChn: {nf, nf, no(pinMsgs), ok, no(pinMsgs), ok, ok},
}

// moderateCells: can_remove_users gates the action on another member (s is
// the success status); perm is what the denied member lacks; anon is what
// anonymous gets.
func moderateCells(s want, perm string, anon, outsiderInPublic want) map[string]cells {
	return map[string]cells{
		pm:     {anon, nf, no(removeUsers), s, no(perm), no(removeUsers), s},
		grp:    {anon, nf, no(removeUsers), s, no(perm), s, s},
		chn:    {anon, nf, no(removeUsers), s, no(perm), s, s},
		pubGrp: {anon, outsiderInPublic, no(removeUsers), s, no(perm), s, s},
		pubChn: {anon, outsiderInPublic, no(removeUsers), s, no(perm), s, s},
	}
}

var conversationRows = []row{
	// --- Replies, threads, mentions ----------------------------------------
	{
		action: "reply", note: "reply_to = the target's message; reply_to_id keeps its id",
		granted: perms(createMsgs), denied: allBut(createMsgs),
		do:    post(func(f *fixture) map[string]any { return map[string]any{"reply_to": f.otherMsg} }),
		check: (*fixture).checkReplied,
		want:  postCells,
	},
	{
		action: "reply to a message of another room", note: "an invariant: 400 on reply_to for everyone allowed to post",
		granted: perms(createMsgs), denied: allBut(createMsgs),
		do:    post(func(f *fixture) map[string]any { return map[string]any{"reply_to": f.foreignMessage()} }),
		check: (*fixture).checkNeverSucceeds,
		want:  refusedPostCells("reply_to"),
	},
	{
		action: "thread reply", note: "thread = the target's message (a root); the root counts the reply",
		granted: perms(createMsgs), denied: allBut(createMsgs),
		do:    post(func(f *fixture) map[string]any { return map[string]any{"thread": f.otherMsg} }),
		check: (*fixture).checkThreadReply,
		want:  postCells,
	},
	{
		action: "thread reply to a root in another room", note: "an invariant: 400 on thread",
		granted: perms(createMsgs), denied: allBut(createMsgs),
		do:    post(func(f *fixture) map[string]any { return map[string]any{"thread": f.foreignMessage()} }),
		check: (*fixture).checkNeverSucceeds,
		want:  refusedPostCells("thread"),
	},
	{
		action: "mention a member", note: "mentions = [the target]",
		granted: perms(createMsgs), denied: allBut(createMsgs),
		do:    post(func(f *fixture) map[string]any { return map[string]any{"mentions": []string{f.target.ID()}} }),
		check: (*fixture).checkMentioned,
		want:  postCells,
	},
	{
		action: "mention a non-member", note: "an invariant: 400 on mentions (the newcomer is in no room)",
		granted: perms(createMsgs), denied: allBut(createMsgs),
		do:    post(func(f *fixture) map[string]any { return map[string]any{"mentions": []string{f.cast.newcomer.ID()}} }),
		check: (*fixture).checkNeverSucceeds,
		want:  refusedPostCells("mentions"),
	},

	// --- Pins ----------------------------------------------------------------
	{
		action: "pin another's message", note: `PATCH {"pinned": true}; needs can_pin_messages, not can_edit_*; messages stay members-only in public rooms`,
		granted: perms(pinMsgs), denied: allNine,
		do:    setPinned(true),
		check: checkPinned(true),
		want:  pinCells,
	},
	{
		action: "unpin a pinned message", note: `PATCH {"pinned": false} on the target's message, pinned beforehand`,
		granted: perms(pinMsgs), denied: allNine,
		setup: (*fixture).pinOther,
		do:    setPinned(false),
		check: checkPinned(false),
		want:  pinCells,
	},

	// --- Bans ----------------------------------------------------------------
	{
		action: "ban a member", note: "the target holds no permission; their membership goes in the ban's transaction; a visible public room answers a non-member 403",
		granted: perms(removeUsers), denied: allBut(removeUsers),
		do: (*fixture).banTarget, check: (*fixture).checkTargetBanned,
		want: moderateCells(ok, removeUsers, bad(""), no(removeUsers)),
	},
	{
		action: "ban a member above me", note: "not above me: the target holds can_edit_room, so the banner must hold it too",
		granted: perms(removeUsers, editRoom), denied: allBut(editRoom), target: perms(editRoom),
		do: (*fixture).banTarget, check: (*fixture).checkTargetBanned,
		want: moderateCells(ok, editRoom, bad(""), no(removeUsers)),
	},
	{
		action: "unban", note: "the newcomer was banned beforehand; bans are visible to the room's holders of can_remove_users only, so the other members get 404 as for any record they cannot see",
		granted: perms(removeUsers), denied: allBut(removeUsers),
		setup: (*fixture).banNewcomer,
		do:    (*fixture).unban, check: (*fixture).checkUnbanned,
		want: map[string]cells{
			pm:     {nf, nf, nf, gone, nf, nf, gone},
			grp:    {nf, nf, nf, gone, nf, gone, gone},
			chn:    {nf, nf, nf, gone, nf, gone, gone},
			pubGrp: {nf, nf, nf, gone, nf, gone, gone},
			pubChn: {nf, nf, nf, gone, nf, gone, gone},
		},
	},
	{
		action: "add a banned user", note: "the newcomer was banned beforehand: 403 naming banned for everyone who may add (a private room's third member is 400 on user first)",
		granted: perms(addUsers), denied: allBut(addUsers),
		setup: (*fixture).banNewcomer,
		do:    addMember(nil), check: (*fixture).checkNeverSucceeds,
		want: map[string]cells{
			pm:     {bad(""), nf, no(addUsers), bad("user"), no(addUsers), no(addUsers), bad("user")},
			grp:    {bad(""), nf, isBanned, isBanned, no(addUsers), isBanned, isBanned},
			chn:    {bad(""), nf, isBanned, isBanned, no(addUsers), isBanned, isBanned},
			pubGrp: {bad(""), no(addUsers), isBanned, isBanned, no(addUsers), isBanned, isBanned},
			pubChn: {bad(""), no(addUsers), isBanned, isBanned, no(addUsers), isBanned, isBanned},
		},
	},
	{
		action: "join a public room while banned", note: "the actor was banned beforehand",
		granted: nil, denied: none,
		setup: (*fixture).banActor,
		do:    join(nil), check: (*fixture).checkNeverSucceeds,
		want: map[string]cells{
			pm:     {bad(""), nf, isMember, noGate, isMember, isMember, suNoRoom},
			grp:    {bad(""), nf, isMember, noGate, isMember, isMember, suNoRoom},
			chn:    {bad(""), nf, isMember, noGate, isMember, isMember, suNoRoom},
			pubGrp: {bad(""), isBanned, isMember, noGate, isMember, isMember, suNoRoom},
			pubChn: {bad(""), isBanned, isMember, noGate, isMember, isMember, suNoRoom},
		},
	},

	// --- Silence ---------------------------------------------------------------
	{
		action: "silence a member", note: "PATCH the target's membership {silenced_until}; memberships are members-only",
		granted: perms(removeUsers), denied: allBut(removeUsers),
		do: (*fixture).silenceTarget, check: (*fixture).checkTargetSilenced,
		want: moderateCells(ok, removeUsers, nf, nf),
	},
	{
		action: "silence a member above me", note: "not above me: the target holds can_edit_room",
		granted: perms(removeUsers, editRoom), denied: allBut(editRoom), target: perms(editRoom),
		do: (*fixture).silenceTarget, check: (*fixture).checkTargetSilenced,
		want: moderateCells(ok, editRoom, nf, nf),
	},
	{
		action: "post while silenced", note: "the actor's membership is silenced for an hour; a superuser posts on behalf of the creator, who is not",
		granted: perms(createMsgs), denied: allBut(createMsgs),
		setup: (*fixture).silenceActor,
		do:    (*fixture).postMessage, check: (*fixture).checkPosted,
		want: map[string]cells{
			pm:     {bad(""), nf, isSilenced, isSilenced, no(createMsgs), isSilenced, ok},
			grp:    {bad(""), nf, isSilenced, isSilenced, no(createMsgs), isSilenced, ok},
			chn:    {bad(""), nf, no(createMsgs), isSilenced, no(createMsgs), isSilenced, ok},
			pubGrp: {bad(""), no(createMsgs), isSilenced, isSilenced, no(createMsgs), isSilenced, ok},
			pubChn: {bad(""), no(createMsgs), no(createMsgs), isSilenced, no(createMsgs), isSilenced, ok},
		},
	},
	{
		action: "react while silenced", note: "silence stops posts, not reactions",
		granted: nil, denied: none,
		setup: (*fixture).silenceActor,
		do:    (*fixture).react, check: (*fixture).checkReacted,
		want: map[string]cells{
			pm:     {bad(""), nf, ok, noGate, ok, ok, ok},
			grp:    {bad(""), nf, ok, noGate, ok, ok, ok},
			chn:    {bad(""), nf, ok, noGate, ok, ok, ok},
			pubGrp: {bad(""), nf, ok, noGate, ok, ok, ok},
			pubChn: {bad(""), nf, ok, noGate, ok, ok, ok},
		},
	},

	// --- Slow mode ---------------------------------------------------------------
	{
		action: "set slow mode", note: "slow_mode_seconds is a room edit: can_edit_room",
		granted: perms(editRoom), denied: allBut(editRoom),
		do: (*fixture).setSlowMode, check: (*fixture).checkSlowMode,
		want: map[string]cells{
			pm:     {nf, nf, no(editRoom), ok, no(editRoom), no(editRoom), ok},
			grp:    {nf, nf, no(editRoom), ok, no(editRoom), ok, ok},
			chn:    {nf, nf, no(editRoom), ok, no(editRoom), ok, ok},
			pubGrp: {nf, no(editRoom), no(editRoom), ok, no(editRoom), ok, ok},
			pubChn: {nf, no(editRoom), no(editRoom), ok, no(editRoom), ok, ok},
		},
	},
	{
		action: "post under slow mode", note: "an hour of slow mode and the actor posted just now: 429 unless holding can_delete_messages; a superuser is not slowed",
		granted: perms(createMsgs, deleteAny), denied: allBut(deleteAny),
		setup: (*fixture).slowRoom,
		do:    (*fixture).postMessage, check: (*fixture).checkPosted,
		want: map[string]cells{
			pm:     {bad(""), nf, tooMany, ok, tooMany, tooMany, ok},
			grp:    {bad(""), nf, tooMany, ok, tooMany, ok, ok},
			chn:    {bad(""), nf, no(createMsgs), ok, tooMany, ok, ok},
			pubGrp: {bad(""), no(createMsgs), tooMany, ok, tooMany, ok, ok},
			pubChn: {bad(""), no(createMsgs), no(createMsgs), ok, tooMany, ok, ok},
		},
	},

	// --- Reports -------------------------------------------------------------------
	{
		action: "report a message", note: "any member reports; reporter is the caller; messages stay members-only in public rooms",
		granted: nil, denied: none,
		do: (*fixture).report, check: (*fixture).checkReported,
		want: map[string]cells{
			pm:     {bad(""), nf, ok, noGate, ok, ok, suNoReport},
			grp:    {bad(""), nf, ok, noGate, ok, ok, suNoReport},
			chn:    {bad(""), nf, ok, noGate, ok, ok, suNoReport},
			pubGrp: {bad(""), nf, ok, noGate, ok, ok, suNoReport},
			pubChn: {bad(""), nf, ok, noGate, ok, ok, suNoReport},
		},
	},
	{
		action: "list another's report", note: "the target reported a message: visible to the room's holders of can_delete_messages and superusers",
		granted: perms(deleteAny), denied: allBut(deleteAny),
		setup: (*fixture).targetReports,
		do:    (*fixture).listReports, check: checkListed(func(f *fixture) string { return f.reportID }),
		want: map[string]cells{
			pm:     {unseen, unseen, unseen, seen, unseen, unseen, seen},
			grp:    {unseen, unseen, unseen, seen, unseen, seen, seen},
			chn:    {unseen, unseen, unseen, seen, unseen, seen, seen},
			pubGrp: {unseen, unseen, unseen, seen, unseen, seen, seen},
			pubChn: {unseen, unseen, unseen, seen, unseen, seen, seen},
		},
	},

	{
		action: "list my own report", note: "the actor reported the target's message (the outsider while a member): a reporter always sees their report",
		granted: nil, denied: none,
		setup: (*fixture).actorReports,
		do:    (*fixture).listReports, check: checkListed(func(f *fixture) string { return f.reportID }),
		want: map[string]cells{
			pm:     {anonNoReport, seen, seen, noGate, seen, seen, suNoReport},
			grp:    {anonNoReport, seen, seen, noGate, seen, seen, suNoReport},
			chn:    {anonNoReport, seen, seen, noGate, seen, seen, suNoReport},
			pubGrp: {anonNoReport, seen, seen, noGate, seen, seen, suNoReport},
			pubChn: {anonNoReport, seen, seen, noGate, seen, seen, suNoReport},
		},
	},

	{
		action: "dismiss another's report", note: "DELETE the target's report: a holder of can_delete_messages dismisses it; others cannot see it (404)",
		granted: perms(deleteAny), denied: allBut(deleteAny),
		setup: (*fixture).targetReports,
		do:    (*fixture).deleteReport, check: (*fixture).checkReportGone,
		want: map[string]cells{
			pm:     {nf, nf, nf, gone, nf, nf, gone},
			grp:    {nf, nf, nf, gone, nf, gone, gone},
			chn:    {nf, nf, nf, gone, nf, gone, gone},
			pubGrp: {nf, nf, nf, gone, nf, gone, gone},
			pubChn: {nf, nf, nf, gone, nf, gone, gone},
		},
	},
	{
		action: "withdraw my own report", note: "the reporter deletes their report (the outsider reported while a member)",
		granted: nil, denied: none,
		setup: (*fixture).actorReports,
		do:    (*fixture).deleteReport, check: (*fixture).checkReportGone,
		want: map[string]cells{
			pm:     {anonNoReport, gone, gone, noGate, gone, gone, suNoReport},
			grp:    {anonNoReport, gone, gone, noGate, gone, gone, suNoReport},
			chn:    {anonNoReport, gone, gone, noGate, gone, gone, suNoReport},
			pubGrp: {anonNoReport, gone, gone, noGate, gone, gone, suNoReport},
			pubChn: {anonNoReport, gone, gone, noGate, gone, gone, suNoReport},
		},
	},

	// --- Read receipts ---------------------------------------------------------------
	{
		action: "mark the room read", note: "POST /api/chat/rooms/{id}/read moves the caller's last_seen_at, which receipts read",
		granted: nil, denied: none,
		do: (*fixture).markRead, check: (*fixture).checkMarkedRead,
		want: map[string]cells{
			pm:     {noAuth, nf, ok, noGate, ok, ok, notAUser},
			grp:    {noAuth, nf, ok, noGate, ok, ok, notAUser},
			chn:    {noAuth, nf, ok, noGate, ok, ok, notAUser},
			pubGrp: {noAuth, nf, ok, noGate, ok, ok, notAUser},
			pubChn: {noAuth, nf, ok, noGate, ok, ok, notAUser},
		},
	},
	{
		action: "read receipts", note: "GET /api/chat/rooms/{id}/receipts: members only; the /api/chat routes serve USERS",
		granted: nil, denied: none,
		setup: (*fixture).targetRead,
		do:    (*fixture).receipts, check: (*fixture).checkReceipts,
		want: map[string]cells{
			pm:     {noAuth, nf, ok, noGate, ok, ok, notAUser},
			grp:    {noAuth, nf, ok, noGate, ok, ok, notAUser},
			chn:    {noAuth, nf, ok, noGate, ok, ok, notAUser},
			pubGrp: {noAuth, nf, ok, noGate, ok, ok, notAUser},
			pubChn: {noAuth, nf, ok, noGate, ok, ok, notAUser},
		},
	},
}

func init() { matrix = append(matrix, conversationRows...) }

// ---------------------------------------------------------------------------
// Fixture state for the rows above.

// foreignMessage is a message of another room (a group of the creator's,
// removed when the cell ends).
func (f *fixture) foreignMessage() string {
	room := core.NewRecord(f.collection("chat_rooms"))
	room.Set("name", "elsewhere "+f.tag)
	room.Set("type", "group")
	room.Set("created_by", f.cast.creator.ID())
	f.save(room)
	f.t.Cleanup(func() {
		if r, err := f.env.App.FindRecordById("chat_rooms", room.Id); err == nil {
			_ = f.env.App.Delete(r)
		}
	})
	m := core.NewRecord(f.collection("chat_messages"))
	m.Set("room", room.Id)
	m.Set("user", f.cast.creator.ID())
	m.Set("text", "elsewhere")
	f.save(m)
	return m.Id
}

func (f *fixture) pinOther() {
	m := f.record("chat_messages", f.otherMsg)
	m.Set("pinned_at", types.NowDateTime())
	m.Set("pinned_by", f.cast.creator.ID())
	f.save(m)
}

func (f *fixture) ban(u *chattest.User) string {
	b := core.NewRecord(f.collection("chat_room_bans"))
	b.Set("room", f.room)
	b.Set("user", u.ID())
	b.Set("reason", "set up by the matrix")
	b.Set("created_by", f.cast.creator.ID())
	f.save(b)
	return b.Id
}

func (f *fixture) banNewcomer() { f.banID = f.ban(f.cast.newcomer) }

// banActor bans the outsider (the only actor who is not a member already).
func (f *fixture) banActor() {
	if f.who == outsider {
		f.banID = f.ban(f.actor)
	}
}

func (f *fixture) silenceActor() {
	if f.actorMembership == "" {
		return
	}
	m := f.record("chat_room_users", f.actorMembership)
	m.Set("silenced_until", types.NowDateTime().Add(time.Hour))
	f.save(m)
}

func (f *fixture) slowRoom() {
	room := f.record("chat_rooms", f.room)
	room.Set("slow_mode_seconds", 3600)
	f.save(room)
}

// targetReports: the target reports the actor's message (the target's own
// when the actor has none).
func (f *fixture) targetReports() {
	msg := f.ownMsg
	if msg == "" || msg == f.otherMsg {
		msg = f.otherMsg
	}
	r := core.NewRecord(f.collection("chat_message_reports"))
	r.Set("message", msg)
	r.Set("reporter", f.target.ID())
	r.Set("reason", "set up by the matrix")
	f.save(r)
	f.reportID = r.Id
}

// actorReports: the actor reported the target's message.
func (f *fixture) actorReports() {
	if f.actor == nil || f.who == superuser {
		return
	}
	r := core.NewRecord(f.collection("chat_message_reports"))
	r.Set("message", f.otherMsg)
	r.Set("reporter", f.actor.ID())
	r.Set("reason", "set up by the matrix")
	f.save(r)
	f.reportID = r.Id
}

// targetRead: the target has read up to their message.
func (f *fixture) targetRead() {
	m := f.record("chat_room_users", f.targetMembership)
	m.Set("last_seen_at", f.record("chat_messages", f.otherMsg).GetDateTime("created"))
	f.save(m)
}

// ---------------------------------------------------------------------------
// Actions.

const (
	bansURL    = "/api/collections/chat_room_bans/records"
	reportsURL = "/api/collections/chat_message_reports/records"
)

// post sends "post message"'s body plus extra fields.
func post(extra func(*fixture) map[string]any) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		body := map[string]any{"room": f.room, "text": "posted " + f.tag}
		for k, v := range extra(f) {
			body[k] = v
		}
		return f.send("POST", messagesURL, f.onBehalf(body))
	}
}

func setPinned(pinned bool) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		return f.send("PATCH", messagesURL+"/"+f.otherMsg, map[string]any{"pinned": pinned})
	}
}

func (f *fixture) banTarget() *chattest.Response {
	return f.send("POST", bansURL, map[string]any{"room": f.room, "user": f.target.ID(), "reason": "spam " + f.tag})
}

func (f *fixture) unban() *chattest.Response { return f.send("DELETE", bansURL+"/"+f.banID, nil) }

func (f *fixture) silenceTarget() *chattest.Response {
	return f.send("PATCH", membersURL+"/"+f.targetMembership, map[string]any{"silenced_until": silenceUntil})
}

const silenceUntil = "2030-01-02 03:04:05.000Z"

func (f *fixture) setSlowMode() *chattest.Response {
	return f.send("PATCH", roomsURL+"/"+f.room, map[string]any{"slow_mode_seconds": 30})
}

func (f *fixture) report() *chattest.Response {
	return f.send("POST", reportsURL, map[string]any{"message": f.otherMsg, "reason": "off-topic " + f.tag})
}

func (f *fixture) listReports() *chattest.Response {
	return f.send("GET", reportsURL+filterQuery(fmt.Sprintf("room = %q", f.room)), nil)
}

func (f *fixture) deleteReport() *chattest.Response {
	return f.send("DELETE", reportsURL+"/"+f.reportID, nil)
}

func (f *fixture) markRead() *chattest.Response {
	return f.send("POST", "/api/chat/rooms/"+f.room+"/read", nil)
}

func (f *fixture) receipts() *chattest.Response {
	return f.send("GET", "/api/chat/rooms/"+f.room+"/receipts", nil)
}

// ---------------------------------------------------------------------------
// Effects of successful cells.

func (f *fixture) posted(res *chattest.Response) *core.Record {
	f.checkPosted(want{}, res)
	return f.record("chat_messages", res.Str("id"))
}

func (f *fixture) checkReplied(_ want, res *chattest.Response) {
	m := f.posted(res)
	if m.GetString("reply_to") != f.otherMsg || m.GetString("reply_to_id") != f.otherMsg {
		f.t.Errorf("reply_to=%q reply_to_id=%q, want both %s", m.GetString("reply_to"), m.GetString("reply_to_id"), f.otherMsg)
	}
}

func (f *fixture) checkThreadReply(_ want, res *chattest.Response) {
	m := f.posted(res)
	if m.GetString("thread") != f.otherMsg {
		f.t.Errorf("thread=%q, want %s", m.GetString("thread"), f.otherMsg)
	}
	root := f.record("chat_messages", f.otherMsg)
	if root.GetInt("thread_count") != 1 || root.GetDateTime("thread_last_reply_at").IsZero() {
		f.t.Errorf("root thread_count=%d thread_last_reply_at=%q, want 1 and the reply's time",
			root.GetInt("thread_count"), root.GetString("thread_last_reply_at"))
	}
}

func (f *fixture) checkMentioned(_ want, res *chattest.Response) {
	m := f.posted(res)
	if got := m.GetStringSlice("mentions"); !sameSet(got, []string{f.target.ID()}) {
		f.t.Errorf("mentions=%v, want [%s]", got, f.target.ID())
	}
}

func checkPinned(pinned bool) func(*fixture, want, *chattest.Response) {
	return func(f *fixture, _ want, _ *chattest.Response) {
		m := f.record("chat_messages", f.otherMsg)
		if got := !m.GetDateTime("pinned_at").IsZero(); got != pinned {
			f.t.Errorf("pinned_at=%q, want pinned %v", m.GetString("pinned_at"), pinned)
		}
		wantBy := ""
		if pinned && f.who != superuser {
			wantBy = f.actor.ID()
		}
		if got := m.GetString("pinned_by"); got != wantBy {
			f.t.Errorf("pinned_by=%q, want %q", got, wantBy)
		}
		if m.GetString("text") != "from the target "+f.tag || !m.GetDateTime("edited_at").IsZero() {
			f.t.Errorf("a pin changed the message: text=%q edited_at=%q", m.GetString("text"), m.GetString("edited_at"))
		}
	}
}

func (f *fixture) checkTargetBanned(_ want, res *chattest.Response) {
	b := f.record("chat_room_bans", res.Str("id"))
	if b.GetString("room") != f.room || b.GetString("user") != f.target.ID() {
		f.t.Errorf("ban room=%s user=%s, want %s in %s", b.GetString("room"), b.GetString("user"), f.target.ID(), f.room)
	}
	if f.who != superuser && b.GetString("created_by") != f.actor.ID() {
		f.t.Errorf("ban created_by=%q, want the banner %s", b.GetString("created_by"), f.actor.ID())
	}
	if f.exists("chat_room_users", f.targetMembership) {
		f.t.Errorf("the banned member is still a member")
	}
}

func (f *fixture) checkUnbanned(want, *chattest.Response) {
	if f.exists("chat_room_bans", f.banID) {
		f.t.Errorf("the ban survived its deletion")
	}
}

func (f *fixture) checkTargetSilenced(want, *chattest.Response) {
	got := f.record("chat_room_users", f.targetMembership).GetDateTime("silenced_until")
	if got.String() != silenceUntil {
		f.t.Errorf("silenced_until=%q, want %s", got.String(), silenceUntil)
	}
}

func (f *fixture) checkSlowMode(want, *chattest.Response) {
	if got := f.record("chat_rooms", f.room).GetInt("slow_mode_seconds"); got != 30 {
		f.t.Errorf("slow_mode_seconds=%d, want 30", got)
	}
}

func (f *fixture) checkReported(_ want, res *chattest.Response) {
	r := f.record("chat_message_reports", res.Str("id"))
	if r.GetString("message") != f.otherMsg || r.GetString("reporter") != f.actor.ID() {
		f.t.Errorf("report message=%s reporter=%s, want %s by %s", r.GetString("message"), r.GetString("reporter"), f.otherMsg, f.actor.ID())
	}
}

func (f *fixture) checkReportGone(want, *chattest.Response) {
	if f.exists("chat_message_reports", f.reportID) {
		f.t.Errorf("the report survived its deletion")
	}
	if !f.exists("chat_messages", f.otherMsg) {
		f.t.Errorf("deleting a report deleted its message")
	}
}

func (f *fixture) checkMarkedRead(want, *chattest.Response) {
	seen := f.record("chat_room_users", f.actorMembership).GetDateTime("last_seen_at")
	if seen.IsZero() || seen.Time().Before(f.record("chat_messages", f.otherMsg).GetDateTime("created").Time()) {
		f.t.Errorf("last_seen_at %q, want now (after the room's messages)", seen.String())
	}
}

func (f *fixture) checkReceipts(_ want, res *chattest.Response) {
	for _, item := range res.Items() {
		if item["user"] == f.target.ID() {
			if item["last_read_message"] != f.otherMsg {
				f.t.Errorf("the target's receipt %v, want last_read_message %s", item, f.otherMsg)
			}
			return
		}
	}
	f.t.Errorf("no receipt for the target %s: %s", f.target.ID(), res.String())
}
