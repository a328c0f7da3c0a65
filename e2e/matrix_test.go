package e2e

// The permission matrix: every room kind × every action × every actor,
// through the real HTTP API (PocketBase router, API rules, hooks, SQLite).
//
// The expected outcomes are written out by hand in the `matrix` table below,
// from SPEC.md (Collections, Permissions, Errors) and the design decisions
// recorded with it; nothing in the table is computed from the code under
// test. Permission names and the per-type defaults are spelled out here too
// rather than imported from internal/chat.
//
// Each cell gets a fresh room (and fresh messages, media and reactions) in
// an app shared by its room kind; the room is deleted when the cell ends, so
// the same pair of users can open a new private_messages room every cell.
// A cell asserts:
//   - the status code;
//   - for 403: the message and data.permission name the permission (or, for
//     the "only the member" refusals, data names the field);
//   - for 400: data names the field when the table gives one;
//   - for a refusal: the room and everything in it (memberships with their
//     permissions and muted flags, messages, attachment links, reactions)
//     are exactly as before — nothing half-written;
//   - for a success: the row-specific effect, read back through env.App.
//
// Cells that cannot exist carry na("reason") in the table and are reported
// as skipped with that reason.

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/filesystem"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

// ---------------------------------------------------------------------------
// The spec's vocabulary, spelled out.

const (
	addUsers    = "can_add_users"
	removeUsers = "can_remove_users"
	createMsgs  = "can_create_messages"
	deleteAny   = "can_delete_messages"
	deleteOwn   = "can_delete_own_messages"
	editAny     = "can_edit_messages"
	editOwn     = "can_edit_own_messages"
	editRoom    = "can_edit_room"
	deleteRoom  = "can_delete_room"
	pinMsgs     = "can_pin_messages" // version 2: group and channel creators only
)

var allNine = []string{addUsers, removeUsers, createMsgs, deleteAny, deleteOwn, editAny, editOwn, editRoom, deleteRoom}

// allTen is every permission: the nine and can_pin_messages.
var allTen = append(slices.Clone(allNine), pinMsgs)

// none is an explicit empty permission list.
var none = []string{}

func perms(ps ...string) []string { return append([]string{}, ps...) }

func allBut(ps ...string) []string {
	out := []string{}
	for _, p := range allNine {
		if !slices.Contains(ps, p) {
			out = append(out, p)
		}
	}
	return out
}

// specDefaults is SPEC.md's "Defaults per room type" table.
var specDefaults = map[string]struct{ creator, member []string }{
	"private_messages": {
		creator: perms(createMsgs, editOwn, deleteOwn, deleteRoom),
		member:  perms(createMsgs, editOwn, deleteOwn, deleteRoom),
	},
	"group": {
		creator: allTen,
		member:  perms(addUsers, createMsgs, editOwn, deleteOwn),
	},
	"channel": {
		creator: allTen,
		member:  perms(addUsers),
	},
}

// Room kinds: the three types, and the two that can be public.
const (
	pm     = "private_messages"
	grp    = "group"
	chn    = "channel"
	pubGrp = "public_group"
	pubChn = "public_channel"
)

type kind struct {
	name     string
	roomType string
	public   bool
}

var kinds = []kind{
	{pm, "private_messages", false},
	{grp, "group", false},
	{chn, "channel", false},
	{pubGrp, "group", true},
	{pubChn, "channel", true},
}

// Actors, in the order of a row's cells.
type actor int

const (
	anonymous actor = iota // no Authorization header
	outsider               // an authenticated user who is not a member
	member                 // a member holding the room type's member defaults
	granted                // a member holding exactly row.granted
	denied                 // a member holding exactly row.denied (the needed permission left out)
	creator                // the room's creator, with the type's creator defaults
	superuser              // a superuser (the dashboard's account)
)

var actorNames = [...]string{"anonymous", "outsider", "member", "granted", "denied", "creator", "superuser"}

// ---------------------------------------------------------------------------
// Outcomes.

type listing int

const (
	noListing listing = iota
	inList
	notInList
)

type want struct {
	status int
	perm   string  // 403: the permission the message and data.permission name
	field  string  // 400/403: a key data must hold ("" with 400: any body)
	text   string  // the body must mention it (403 banned/silenced, 429)
	list   listing // 200 of a list: whether the cell's record is among the items
	skip   string  // the cell cannot exist: why
}

func (w want) ok() bool { return w.status >= 200 && w.status < 300 }

func (w want) String() string {
	switch {
	case w.skip != "":
		return "n/a"
	case w.list == inList:
		return "200 listed"
	case w.list == notInList:
		return "200 not listed"
	case w.perm != "":
		return fmt.Sprintf("403 naming %s", w.perm)
	case w.field != "":
		return fmt.Sprintf("%d on field %s", w.status, w.field)
	case w.text != "":
		return fmt.Sprintf("%d naming %s", w.status, w.text)
	}
	return fmt.Sprint(w.status)
}

var (
	ok     = want{status: 200}
	gone   = want{status: 204}
	nf     = want{status: 404}
	seen   = want{status: 200, list: inList}
	unseen = want{status: 200, list: notInList}
)

// no is 403 naming perm.
func no(perm string) want { return want{status: 403, perm: perm} }

// bad is 400; field is the field error data must hold ("" when PocketBase's
// create rule answers "Failed to create record" with empty data).
func bad(field string) want { return want{status: 400, field: field} }

// onlyOwner is 403 with a field error: only the member may change field.
func onlyOwner(field string) want { return want{status: 403, field: field} }

func na(reason string) want { return want{skip: reason} }

// Reasons for cells that cannot exist.
var (
	noGate      = na("no permission gates this action: any member may (the denied column is a member holding no permission at all)")
	anonNoRoom  = na("anonymous holds no membership")
	outNoRoom   = na("an outsider holds no membership")
	suNoRoom    = na("a superuser is not in USERS and is never a member")
	suNoAuthor  = na("a superuser authors no messages, reactions or uploads (their author fields point at USERS)")
	anonNoFiles = na("anonymous uploads nothing")
	isMember    = na("already a member of the room")
	noMuteGate  = na("no permission lets a member change another member's muted/last_seen_at")
)

// cells is one room kind's outcomes, one per actor:
//
//	anonymous, outsider, member, granted, denied, creator, superuser
type cells [7]want

type row struct {
	action string
	note   string
	// granted is what the "granted" member holds: the permissions the action
	// needs. nil: no permission gates the action (the granted cell is n/a).
	granted []string
	// denied is what the "denied" member holds: usually all nine but the
	// needed one(s); none for actions no permission gates.
	denied []string
	// target is what the member the action is aimed at holds (default none).
	target []string
	// setup, if any, runs after the fixture is built and before the
	// snapshot: state the action needs (a ban, a pin, slow mode).
	setup func(*fixture)
	do    func(*fixture) *chattest.Response
	check func(*fixture, want, *chattest.Response) // success effect
	want  map[string]cells
}

// ---------------------------------------------------------------------------
// The matrix.

var matrix = []row{
	// --- Seeing the room -----------------------------------------------
	{
		action: "view room", granted: nil, denied: none,
		do: (*fixture).viewRoom, check: (*fixture).checkViewedRoom,
		want: map[string]cells{
			//       anonymous outsider member granted denied creator superuser
			pm:     {nf, nf, ok, noGate, ok, ok, ok},
			grp:    {nf, nf, ok, noGate, ok, ok, ok},
			chn:    {nf, nf, ok, noGate, ok, ok, ok},
			pubGrp: {nf, ok, ok, noGate, ok, ok, ok},
			pubChn: {nf, ok, ok, noGate, ok, ok, ok},
		},
	},
	{
		action: "list rooms", granted: nil, denied: none,
		do: (*fixture).listRooms, check: checkListed(func(f *fixture) string { return f.room }),
		want: map[string]cells{
			pm:     {unseen, unseen, seen, noGate, seen, seen, seen},
			grp:    {unseen, unseen, seen, noGate, seen, seen, seen},
			chn:    {unseen, unseen, seen, noGate, seen, seen, seen},
			pubGrp: {unseen, seen, seen, noGate, seen, seen, seen},
			pubChn: {unseen, seen, seen, noGate, seen, seen, seen},
		},
	},
	{
		action: "list members", note: "public rooms show their record only: members stay members-only",
		granted: nil, denied: none,
		do: (*fixture).listMembers, check: checkListed(func(f *fixture) string { return f.targetMembership }),
		want: map[string]cells{
			pm:     {unseen, unseen, seen, noGate, seen, seen, seen},
			grp:    {unseen, unseen, seen, noGate, seen, seen, seen},
			chn:    {unseen, unseen, seen, noGate, seen, seen, seen},
			pubGrp: {unseen, unseen, seen, noGate, seen, seen, seen},
			pubChn: {unseen, unseen, seen, noGate, seen, seen, seen},
		},
	},
	{
		action: "list messages", granted: nil, denied: none,
		do: (*fixture).listMessages, check: checkListed(func(f *fixture) string { return f.otherMsg }),
		want: map[string]cells{
			pm:     {unseen, unseen, seen, noGate, seen, seen, seen},
			grp:    {unseen, unseen, seen, noGate, seen, seen, seen},
			chn:    {unseen, unseen, seen, noGate, seen, seen, seen},
			pubGrp: {unseen, unseen, seen, noGate, seen, seen, seen},
			pubChn: {unseen, unseen, seen, noGate, seen, seen, seen},
		},
	},
	{
		action: "view another's message", note: "messages stay members-only in public rooms",
		granted: nil, denied: none,
		do: (*fixture).viewMessage, check: (*fixture).checkViewedMessage,
		want: map[string]cells{
			pm:     {nf, nf, ok, noGate, ok, ok, ok},
			grp:    {nf, nf, ok, noGate, ok, ok, ok},
			chn:    {nf, nf, ok, noGate, ok, ok, ok},
			pubGrp: {nf, nf, ok, noGate, ok, ok, ok},
			pubChn: {nf, nf, ok, noGate, ok, ok, ok},
		},
	},
	{
		action: "list reactions", granted: nil, denied: none,
		do: (*fixture).listReactions, check: checkListed(func(f *fixture) string { return f.otherReaction }),
		want: map[string]cells{
			pm:     {unseen, unseen, seen, noGate, seen, seen, seen},
			grp:    {unseen, unseen, seen, noGate, seen, seen, seen},
			chn:    {unseen, unseen, seen, noGate, seen, seen, seen},
			pubGrp: {unseen, unseen, seen, noGate, seen, seen, seen},
			pubChn: {unseen, unseen, seen, noGate, seen, seen, seen},
		},
	},
	{
		action: "list attachments", granted: nil, denied: none,
		do: (*fixture).listAttachments, check: checkListed(func(f *fixture) string { return f.otherLink }),
		want: map[string]cells{
			pm:     {unseen, unseen, seen, noGate, seen, seen, seen},
			grp:    {unseen, unseen, seen, noGate, seen, seen, seen},
			chn:    {unseen, unseen, seen, noGate, seen, seen, seen},
			pubGrp: {unseen, unseen, seen, noGate, seen, seen, seen},
			pubChn: {unseen, unseen, seen, noGate, seen, seen, seen},
		},
	},

	// --- The room itself -----------------------------------------------
	{
		action: "edit room", granted: perms(editRoom), denied: allBut(editRoom),
		note: "a visible public room answers a non-member 403, an invisible one 404",
		do:   (*fixture).editRoom, check: (*fixture).checkRoomRenamed,
		want: map[string]cells{
			pm:     {nf, nf, no(editRoom), ok, no(editRoom), no(editRoom), ok},
			grp:    {nf, nf, no(editRoom), ok, no(editRoom), ok, ok},
			chn:    {nf, nf, no(editRoom), ok, no(editRoom), ok, ok},
			pubGrp: {nf, no(editRoom), no(editRoom), ok, no(editRoom), ok, ok},
			pubChn: {nf, no(editRoom), no(editRoom), ok, no(editRoom), ok, ok},
		},
	},
	{
		action: "change room type", note: "type is immutable: even a superuser or the holder of can_edit_room gets 400",
		granted: perms(editRoom), denied: allBut(editRoom),
		do: (*fixture).changeRoomType, check: (*fixture).checkNeverSucceeds,
		want: map[string]cells{
			pm:     {nf, nf, no(editRoom), bad("type"), no(editRoom), no(editRoom), bad("type")},
			grp:    {nf, nf, no(editRoom), bad("type"), no(editRoom), bad("type"), bad("type")},
			chn:    {nf, nf, no(editRoom), bad("type"), no(editRoom), bad("type"), bad("type")},
			pubGrp: {nf, no(editRoom), no(editRoom), bad("type"), no(editRoom), bad("type"), bad("type")},
			pubChn: {nf, no(editRoom), no(editRoom), bad("type"), no(editRoom), bad("type"), bad("type")},
		},
	},
	{
		action: "delete room", note: "deleting removes memberships, messages, attachment links and reactions",
		granted: perms(deleteRoom), denied: allBut(deleteRoom),
		do: (*fixture).deleteRoom, check: (*fixture).checkRoomDeleted,
		want: map[string]cells{
			pm:     {nf, nf, gone, gone, no(deleteRoom), gone, gone},
			grp:    {nf, nf, no(deleteRoom), gone, no(deleteRoom), gone, gone},
			chn:    {nf, nf, no(deleteRoom), gone, no(deleteRoom), gone, gone},
			pubGrp: {nf, no(deleteRoom), no(deleteRoom), gone, no(deleteRoom), gone, gone},
			pubChn: {nf, no(deleteRoom), no(deleteRoom), gone, no(deleteRoom), gone, gone},
		},
	},

	// --- Members ---------------------------------------------------------
	{
		action: "add member", note: "no permissions key: the type's member defaults ∩ the adder's permissions; a third member of a private room is 400 on user, superuser included",
		granted: perms(addUsers), denied: allBut(addUsers),
		do: addMember(nil), check: (*fixture).checkAddedWithDefaults,
		want: map[string]cells{
			pm:     {bad(""), nf, no(addUsers), bad("user"), no(addUsers), no(addUsers), bad("user")},
			grp:    {bad(""), nf, ok, ok, no(addUsers), ok, ok},
			chn:    {bad(""), nf, ok, ok, no(addUsers), ok, ok},
			pubGrp: {bad(""), no(addUsers), ok, ok, no(addUsers), ok, ok},
			pubChn: {bad(""), no(addUsers), ok, ok, no(addUsers), ok, ok},
		},
	},
	{
		action: "add member granting can_delete_messages", note: "one may grant only permissions one holds",
		granted: perms(addUsers, deleteAny), denied: allBut(deleteAny),
		do: addMember(perms(deleteAny)), check: checkAddedWith(perms(deleteAny)),
		want: map[string]cells{
			pm:     {bad(""), nf, no(addUsers), bad("user"), no(deleteAny), no(addUsers), bad("user")},
			grp:    {bad(""), nf, no(deleteAny), ok, no(deleteAny), ok, ok},
			chn:    {bad(""), nf, no(deleteAny), ok, no(deleteAny), ok, ok},
			pubGrp: {bad(""), no(addUsers), no(deleteAny), ok, no(deleteAny), ok, ok},
			pubChn: {bad(""), no(addUsers), no(deleteAny), ok, no(deleteAny), ok, ok},
		},
	},
	{
		action: "add member with permissions []", note: "an explicit empty list means none",
		granted: perms(addUsers), denied: allBut(addUsers),
		do: addMember(none), check: checkAddedWith(none),
		want: map[string]cells{
			pm:     {bad(""), nf, no(addUsers), bad("user"), no(addUsers), no(addUsers), bad("user")},
			grp:    {bad(""), nf, ok, ok, no(addUsers), ok, ok},
			chn:    {bad(""), nf, ok, ok, no(addUsers), ok, ok},
			pubGrp: {bad(""), no(addUsers), ok, ok, no(addUsers), ok, ok},
			pubChn: {bad(""), no(addUsers), ok, ok, no(addUsers), ok, ok},
		},
	},
	{
		action: "join as myself", note: "any authenticated user joins a public room with the type's member defaults",
		granted: nil, denied: none,
		do: join(nil), check: checkJoinedWith(nil),
		want: map[string]cells{
			pm:     {bad(""), nf, isMember, noGate, isMember, isMember, suNoRoom},
			grp:    {bad(""), nf, isMember, noGate, isMember, isMember, suNoRoom},
			chn:    {bad(""), nf, isMember, noGate, isMember, isMember, suNoRoom},
			pubGrp: {bad(""), ok, isMember, noGate, isMember, isMember, suNoRoom},
			pubChn: {bad(""), ok, isMember, noGate, isMember, isMember, suNoRoom},
		},
	},
	{
		action: "join as myself asking for can_edit_room", note: "a joiner gets the defaults, never more",
		granted: nil, denied: none,
		do: join(perms(editRoom)), check: checkJoinedWith(perms(editRoom)),
		want: map[string]cells{
			pm:     {bad(""), nf, isMember, noGate, isMember, isMember, suNoRoom},
			grp:    {bad(""), nf, isMember, noGate, isMember, isMember, suNoRoom},
			chn:    {bad(""), nf, isMember, noGate, isMember, isMember, suNoRoom},
			pubGrp: {bad(""), no(editRoom), isMember, noGate, isMember, isMember, suNoRoom},
			pubChn: {bad(""), no(editRoom), isMember, noGate, isMember, isMember, suNoRoom},
		},
	},
	{
		action: "remove member", note: "the target holds no permission",
		granted: perms(removeUsers), denied: allBut(removeUsers),
		do: (*fixture).removeTarget, check: (*fixture).checkTargetRemoved,
		want: map[string]cells{
			pm:     {nf, nf, no(removeUsers), gone, no(removeUsers), no(removeUsers), gone},
			grp:    {nf, nf, no(removeUsers), gone, no(removeUsers), gone, gone},
			chn:    {nf, nf, no(removeUsers), gone, no(removeUsers), gone, gone},
			pubGrp: {nf, nf, no(removeUsers), gone, no(removeUsers), gone, gone},
			pubChn: {nf, nf, no(removeUsers), gone, no(removeUsers), gone, gone},
		},
	},
	{
		action: "remove member above me", note: "the target holds can_edit_room: the remover must hold it too",
		granted: perms(removeUsers, editRoom), denied: allBut(editRoom), target: perms(editRoom),
		do: (*fixture).removeTarget, check: (*fixture).checkTargetRemoved,
		want: map[string]cells{
			pm:     {nf, nf, no(removeUsers), gone, no(editRoom), no(removeUsers), gone},
			grp:    {nf, nf, no(removeUsers), gone, no(editRoom), gone, gone},
			chn:    {nf, nf, no(removeUsers), gone, no(editRoom), gone, gone},
			pubGrp: {nf, nf, no(removeUsers), gone, no(editRoom), gone, gone},
			pubChn: {nf, nf, no(removeUsers), gone, no(editRoom), gone, gone},
		},
	},
	{
		action: "change another member's permissions", note: "the target goes from none to [can_create_messages]: needs can_add_users and the permission added",
		granted: perms(addUsers, createMsgs), denied: allBut(addUsers),
		do: setTargetPermissions(perms(createMsgs)), check: checkTargetPermissions(perms(createMsgs)),
		want: map[string]cells{
			pm:     {nf, nf, no(addUsers), ok, no(addUsers), no(addUsers), ok},
			grp:    {nf, nf, ok, ok, no(addUsers), ok, ok},
			chn:    {nf, nf, no(createMsgs), ok, no(addUsers), ok, ok},
			pubGrp: {nf, nf, ok, ok, no(addUsers), ok, ok},
			pubChn: {nf, nf, no(createMsgs), ok, no(addUsers), ok, ok},
		},
	},
	{
		action: "promote a member above me", note: "the target holds can_edit_room and gains can_create_messages: the actor must hold what the target already holds, not just what is added",
		granted: perms(addUsers, createMsgs, editRoom), denied: allBut(editRoom), target: perms(editRoom),
		do: setTargetPermissions(perms(editRoom, createMsgs)), check: checkTargetPermissions(perms(editRoom, createMsgs)),
		want: map[string]cells{
			pm:     {nf, nf, no(addUsers), ok, no(editRoom), no(addUsers), ok},
			grp:    {nf, nf, no(editRoom), ok, no(editRoom), ok, ok},
			chn:    {nf, nf, no(createMsgs), ok, no(editRoom), ok, ok},
			pubGrp: {nf, nf, no(editRoom), ok, no(editRoom), ok, ok},
			pubChn: {nf, nf, no(createMsgs), ok, no(editRoom), ok, ok},
		},
	},
	{
		action: "demote a member above me", note: "the target holds can_edit_room and goes to none: the actor must hold it",
		granted: perms(addUsers, editRoom), denied: allBut(editRoom), target: perms(editRoom),
		do: setTargetPermissions(none), check: checkTargetPermissions(none),
		want: map[string]cells{
			pm:     {nf, nf, no(addUsers), ok, no(editRoom), no(addUsers), ok},
			grp:    {nf, nf, no(editRoom), ok, no(editRoom), ok, ok},
			chn:    {nf, nf, no(editRoom), ok, no(editRoom), ok, ok},
			pubGrp: {nf, nf, no(editRoom), ok, no(editRoom), ok, ok},
			pubChn: {nf, nf, no(editRoom), ok, no(editRoom), ok, ok},
		},
	},
	{
		action: "leave", note: "nobody leaves a private_messages room",
		granted: nil, denied: none,
		do: (*fixture).leave, check: (*fixture).checkLeft,
		want: map[string]cells{
			pm:     {anonNoRoom, outNoRoom, no(deleteRoom), noGate, no(deleteRoom), no(deleteRoom), suNoRoom},
			grp:    {anonNoRoom, outNoRoom, gone, noGate, gone, gone, suNoRoom},
			chn:    {anonNoRoom, outNoRoom, gone, noGate, gone, gone, suNoRoom},
			pubGrp: {anonNoRoom, outNoRoom, gone, noGate, gone, gone, suNoRoom},
			pubChn: {anonNoRoom, outNoRoom, gone, noGate, gone, gone, suNoRoom},
		},
	},
	{
		action: "mute myself", note: "sets muted and last_seen_at on one's own membership",
		granted: nil, denied: none,
		do: (*fixture).muteMyself, check: (*fixture).checkMutedMyself,
		want: map[string]cells{
			pm:     {anonNoRoom, outNoRoom, ok, noGate, ok, ok, suNoRoom},
			grp:    {anonNoRoom, outNoRoom, ok, noGate, ok, ok, suNoRoom},
			chn:    {anonNoRoom, outNoRoom, ok, noGate, ok, ok, suNoRoom},
			pubGrp: {anonNoRoom, outNoRoom, ok, noGate, ok, ok, suNoRoom},
			pubChn: {anonNoRoom, outNoRoom, ok, noGate, ok, ok, suNoRoom},
		},
	},
	{
		action: "mute another member", note: "only the member changes their own muted: the denied member here holds all nine permissions",
		granted: nil, denied: allNine,
		do: (*fixture).muteTarget, check: (*fixture).checkTargetMuted,
		want: map[string]cells{
			pm:     {nf, nf, onlyOwner("muted"), noMuteGate, onlyOwner("muted"), onlyOwner("muted"), ok},
			grp:    {nf, nf, onlyOwner("muted"), noMuteGate, onlyOwner("muted"), onlyOwner("muted"), ok},
			chn:    {nf, nf, onlyOwner("muted"), noMuteGate, onlyOwner("muted"), onlyOwner("muted"), ok},
			pubGrp: {nf, nf, onlyOwner("muted"), noMuteGate, onlyOwner("muted"), onlyOwner("muted"), ok},
			pubChn: {nf, nf, onlyOwner("muted"), noMuteGate, onlyOwner("muted"), onlyOwner("muted"), ok},
		},
	},
	{
		action: "drop all my permissions", note: "a member may drop their own permissions",
		granted: nil, denied: none,
		do: setMyPermissions(none), check: checkMyPermissions(none),
		want: map[string]cells{
			pm:     {anonNoRoom, outNoRoom, ok, noGate, ok, ok, suNoRoom},
			grp:    {anonNoRoom, outNoRoom, ok, noGate, ok, ok, suNoRoom},
			chn:    {anonNoRoom, outNoRoom, ok, noGate, ok, ok, suNoRoom},
			pubGrp: {anonNoRoom, outNoRoom, ok, noGate, ok, ok, suNoRoom},
			pubChn: {anonNoRoom, outNoRoom, ok, noGate, ok, ok, suNoRoom},
		},
	},
	{
		action: "give myself can_delete_messages", note: "never add to one's own permissions, can_add_users or not (granted holds can_add_users); a group/channel creator already holds every permission, so nothing is added and the no-op passes",
		granted: perms(addUsers), denied: allBut(deleteAny),
		do: addToMyPermissions(deleteAny), check: checkMyPermissionsPlus(deleteAny),
		want: map[string]cells{
			pm:     {anonNoRoom, outNoRoom, no(deleteAny), no(deleteAny), no(deleteAny), no(deleteAny), suNoRoom},
			grp:    {anonNoRoom, outNoRoom, no(deleteAny), no(deleteAny), no(deleteAny), ok, suNoRoom},
			chn:    {anonNoRoom, outNoRoom, no(deleteAny), no(deleteAny), no(deleteAny), ok, suNoRoom},
			pubGrp: {anonNoRoom, outNoRoom, no(deleteAny), no(deleteAny), no(deleteAny), ok, suNoRoom},
			pubChn: {anonNoRoom, outNoRoom, no(deleteAny), no(deleteAny), no(deleteAny), ok, suNoRoom},
		},
	},

	// --- Messages --------------------------------------------------------
	{
		action: "post message", note: "a superuser posts on behalf of the creator (user in the body)",
		granted: perms(createMsgs), denied: allBut(createMsgs),
		do: (*fixture).postMessage, check: (*fixture).checkPosted,
		want: map[string]cells{
			pm:     {bad(""), nf, ok, ok, no(createMsgs), ok, ok},
			grp:    {bad(""), nf, ok, ok, no(createMsgs), ok, ok},
			chn:    {bad(""), nf, no(createMsgs), ok, no(createMsgs), ok, ok},
			pubGrp: {bad(""), no(createMsgs), ok, ok, no(createMsgs), ok, ok},
			pubChn: {bad(""), no(createMsgs), no(createMsgs), ok, no(createMsgs), ok, ok},
		},
	},
	{
		action: "edit own message", note: "anonymous tries the target's message; the outsider's own message dates from an earlier membership",
		granted: perms(editOwn), denied: allBut(editOwn, editAny),
		do: editMessage(true), check: checkEdited(true),
		want: map[string]cells{
			pm:     {nf, nf, ok, ok, no(editOwn), ok, suNoAuthor},
			grp:    {nf, nf, ok, ok, no(editOwn), ok, suNoAuthor},
			chn:    {nf, nf, no(editOwn), ok, no(editOwn), ok, suNoAuthor},
			pubGrp: {nf, nf, ok, ok, no(editOwn), ok, suNoAuthor},
			pubChn: {nf, nf, no(editOwn), ok, no(editOwn), ok, suNoAuthor},
		},
	},
	{
		action: "edit own message holding only can_edit_messages", note: "can_edit_messages covers one's own messages too",
		granted: perms(editAny), denied: allBut(editOwn, editAny),
		do: editMessage(true), check: checkEdited(true),
		want: map[string]cells{
			pm:     {nf, nf, ok, ok, no(editOwn), ok, suNoAuthor},
			grp:    {nf, nf, ok, ok, no(editOwn), ok, suNoAuthor},
			chn:    {nf, nf, no(editOwn), ok, no(editOwn), ok, suNoAuthor},
			pubGrp: {nf, nf, ok, ok, no(editOwn), ok, suNoAuthor},
			pubChn: {nf, nf, no(editOwn), ok, no(editOwn), ok, suNoAuthor},
		},
	},
	{
		action:  "edit another's message",
		granted: perms(editAny), denied: allBut(editAny),
		do: editMessage(false), check: checkEdited(false),
		want: map[string]cells{
			pm:     {nf, nf, no(editAny), ok, no(editAny), no(editAny), ok},
			grp:    {nf, nf, no(editAny), ok, no(editAny), ok, ok},
			chn:    {nf, nf, no(editAny), ok, no(editAny), ok, ok},
			pubGrp: {nf, nf, no(editAny), ok, no(editAny), ok, ok},
			pubChn: {nf, nf, no(editAny), ok, no(editAny), ok, ok},
		},
	},
	{
		action: "delete own message", note: "anonymous tries the target's message; the outsider's own message dates from an earlier membership",
		granted: perms(deleteOwn), denied: allBut(deleteOwn, deleteAny),
		do: deleteMessage(true), check: checkMessageDeleted(true),
		want: map[string]cells{
			pm:     {nf, nf, gone, gone, no(deleteOwn), gone, suNoAuthor},
			grp:    {nf, nf, gone, gone, no(deleteOwn), gone, suNoAuthor},
			chn:    {nf, nf, no(deleteOwn), gone, no(deleteOwn), gone, suNoAuthor},
			pubGrp: {nf, nf, gone, gone, no(deleteOwn), gone, suNoAuthor},
			pubChn: {nf, nf, no(deleteOwn), gone, no(deleteOwn), gone, suNoAuthor},
		},
	},
	{
		action: "delete own message holding only can_delete_messages", note: "can_delete_messages covers one's own messages too",
		granted: perms(deleteAny), denied: allBut(deleteOwn, deleteAny),
		do: deleteMessage(true), check: checkMessageDeleted(true),
		want: map[string]cells{
			pm:     {nf, nf, gone, gone, no(deleteOwn), gone, suNoAuthor},
			grp:    {nf, nf, gone, gone, no(deleteOwn), gone, suNoAuthor},
			chn:    {nf, nf, no(deleteOwn), gone, no(deleteOwn), gone, suNoAuthor},
			pubGrp: {nf, nf, gone, gone, no(deleteOwn), gone, suNoAuthor},
			pubChn: {nf, nf, no(deleteOwn), gone, no(deleteOwn), gone, suNoAuthor},
		},
	},
	{
		action: "delete another's message", note: "its attachment link and reactions go with it",
		granted: perms(deleteAny), denied: allBut(deleteAny),
		do: deleteMessage(false), check: checkMessageDeleted(false),
		want: map[string]cells{
			pm:     {nf, nf, no(deleteAny), gone, no(deleteAny), no(deleteAny), gone},
			grp:    {nf, nf, no(deleteAny), gone, no(deleteAny), gone, gone},
			chn:    {nf, nf, no(deleteAny), gone, no(deleteAny), gone, gone},
			pubGrp: {nf, nf, no(deleteAny), gone, no(deleteAny), gone, gone},
			pubChn: {nf, nf, no(deleteAny), gone, no(deleteAny), gone, gone},
		},
	},

	// --- Reactions -------------------------------------------------------
	{
		action: "react", note: "👍 on the target's message; a superuser reacts on behalf of the creator; a non-member of a public room cannot see the message: 404",
		granted: nil, denied: none,
		do: (*fixture).react, check: (*fixture).checkReacted,
		want: map[string]cells{
			pm:     {bad(""), nf, ok, noGate, ok, ok, ok},
			grp:    {bad(""), nf, ok, noGate, ok, ok, ok},
			chn:    {bad(""), nf, ok, noGate, ok, ok, ok},
			pubGrp: {bad(""), nf, ok, noGate, ok, ok, ok},
			pubChn: {bad(""), nf, ok, noGate, ok, ok, ok},
		},
	},
	{
		action: "remove own reaction", note: "anonymous tries the target's reaction",
		granted: nil, denied: none,
		do: removeReaction(true), check: checkReactionRemoved(true),
		want: map[string]cells{
			pm:     {nf, nf, gone, noGate, gone, gone, suNoAuthor},
			grp:    {nf, nf, gone, noGate, gone, gone, suNoAuthor},
			chn:    {nf, nf, gone, noGate, gone, gone, suNoAuthor},
			pubGrp: {nf, nf, gone, noGate, gone, gone, suNoAuthor},
			pubChn: {nf, nf, gone, noGate, gone, gone, suNoAuthor},
		},
	},
	{
		action:  "remove another's reaction",
		granted: perms(deleteAny), denied: allBut(deleteAny),
		do: removeReaction(false), check: checkReactionRemoved(false),
		want: map[string]cells{
			pm:     {nf, nf, no(deleteAny), gone, no(deleteAny), no(deleteAny), gone},
			grp:    {nf, nf, no(deleteAny), gone, no(deleteAny), gone, gone},
			chn:    {nf, nf, no(deleteAny), gone, no(deleteAny), gone, gone},
			pubGrp: {nf, nf, no(deleteAny), gone, no(deleteAny), gone, gone},
			pubChn: {nf, nf, no(deleteAny), gone, no(deleteAny), gone, gone},
		},
	},

	// --- Media -----------------------------------------------------------
	{
		action: "attach media to a message", note: "the actor uploads (anonymous and the superuser use the creator's upload), then posts {room, text, media}",
		granted: perms(createMsgs), denied: allBut(createMsgs),
		do: attachMedia(false), check: (*fixture).checkAttached,
		want: map[string]cells{
			pm:     {bad(""), nf, ok, ok, no(createMsgs), ok, ok},
			grp:    {bad(""), nf, ok, ok, no(createMsgs), ok, ok},
			chn:    {bad(""), nf, no(createMsgs), ok, no(createMsgs), ok, ok},
			pubGrp: {bad(""), no(createMsgs), ok, ok, no(createMsgs), ok, ok},
			pubChn: {bad(""), no(createMsgs), no(createMsgs), ok, no(createMsgs), ok, ok},
		},
	},
	{
		action: "attach media uploaded by someone else", note: "an invariant: 400 on media for everyone allowed to post, superuser included",
		granted: perms(createMsgs), denied: allBut(createMsgs),
		do: attachMedia(true), check: (*fixture).checkNeverSucceeds,
		want: map[string]cells{
			pm:     {bad(""), nf, bad("media"), bad("media"), no(createMsgs), bad("media"), bad("media")},
			grp:    {bad(""), nf, bad("media"), bad("media"), no(createMsgs), bad("media"), bad("media")},
			chn:    {bad(""), nf, no(createMsgs), bad("media"), no(createMsgs), bad("media"), bad("media")},
			pubGrp: {bad(""), no(createMsgs), bad("media"), bad("media"), no(createMsgs), bad("media"), bad("media")},
			pubChn: {bad(""), no(createMsgs), no(createMsgs), bad("media"), no(createMsgs), bad("media"), bad("media")},
		},
	},
	{
		action: "download attached media with a file token", note: "the target's upload, attached to the target's message; anonymous cannot get a token and asks without one",
		granted: nil, denied: none,
		do: download(false, true), check: (*fixture).checkDownloaded,
		want: map[string]cells{
			pm:     {nf, nf, ok, noGate, ok, ok, ok},
			grp:    {nf, nf, ok, noGate, ok, ok, ok},
			chn:    {nf, nf, ok, noGate, ok, ok, ok},
			pubGrp: {nf, nf, ok, noGate, ok, ok, ok},
			pubChn: {nf, nf, ok, noGate, ok, ok, ok},
		},
	},
	{
		action: "download attached media without a token", note: "chat_media files are protected: no token, no file, superuser included",
		granted: nil, denied: none,
		do: download(false, false), check: (*fixture).checkNeverSucceeds,
		want: map[string]cells{
			pm:     {nf, nf, nf, noGate, nf, nf, nf},
			grp:    {nf, nf, nf, noGate, nf, nf, nf},
			chn:    {nf, nf, nf, noGate, nf, nf, nf},
			pubGrp: {nf, nf, nf, noGate, nf, nf, nf},
			pubChn: {nf, nf, nf, noGate, nf, nf, nf},
		},
	},
	{
		action: "download my own upload with a file token", note: "the uploader may always download: the outsider uploaded it while a member",
		granted: nil, denied: none,
		do: download(true, true), check: (*fixture).checkDownloaded,
		want: map[string]cells{
			pm:     {anonNoFiles, ok, ok, noGate, ok, ok, suNoAuthor},
			grp:    {anonNoFiles, ok, ok, noGate, ok, ok, suNoAuthor},
			chn:    {anonNoFiles, ok, ok, noGate, ok, ok, suNoAuthor},
			pubGrp: {anonNoFiles, ok, ok, noGate, ok, ok, suNoAuthor},
			pubChn: {anonNoFiles, ok, ok, noGate, ok, ok, suNoAuthor},
		},
	},
}

// ---------------------------------------------------------------------------
// Running the matrix.

type cast struct {
	creator, member, victim, grantee, refused, outsider, newcomer, super *chattest.User
}

var pngBytes = chattest.PNG(4, 4)

func TestMatrix(t *testing.T) {
	var ran, skipped atomic.Int64
	t.Cleanup(func() {
		t.Logf("permission matrix: %d cells run, %d documented as not applicable (%d rows × %d room kinds × %d actors)",
			ran.Load(), skipped.Load(), len(matrix), len(kinds), len(actorNames))
	})
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			// Rate limits off: every cell builds its room through the API (the
			// private room through POST /api/chat/private, a counted write);
			// the limits have their own tests (e2e/limits_test.go).
			env := chattest.New(t, chatmodule.Config{RateLimits: chatmodule.RateLimits{Disabled: true}})
			c := &cast{
				creator:  env.NewUser("creator"),
				member:   env.NewUser("member"),
				victim:   env.NewUser("target"),
				grantee:  env.NewUser("granted"),
				refused:  env.NewUser("denied"),
				outsider: env.NewUser("outsider"),
				newcomer: env.NewUser("newcomer"),
				super:    env.Superuser(),
			}
			n := 0
			for _, r := range matrix {
				for who := anonymous; who <= superuser; who++ {
					w := r.want[k.name][who]
					n++
					tag := fmt.Sprintf("%s-%d", k.name, n)
					t.Run(r.action+"/"+actorNames[who], func(t *testing.T) {
						if w.skip != "" {
							skipped.Add(1)
							t.Skip(w.skip)
						}
						ran.Add(1)
						runCell(t, env, c, k, r, who, w, tag)
					})
				}
			}
		})
	}
}

func runCell(t *testing.T, env *chattest.Env, c *cast, k kind, r row, who actor, w want, tag string) {
	f := build(t, env, c, k, r, who, tag)
	if r.setup != nil {
		r.setup(f)
	}
	before := f.snapshot()
	res := r.do(f)
	if res.Status != w.status {
		t.Errorf("%s by %s in a %s room: status %d, want %s; body %s", r.action, actorNames[who], k.name, res.Status, w, res.String())
	} else {
		assertBody(t, w, res)
	}
	if !w.ok() {
		if after := f.snapshot(); after != before {
			t.Errorf("a refused request changed the room:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		return
	}
	if res.Status == w.status {
		r.check(f, w, res)
	}
}

func assertBody(t *testing.T, w want, res *chattest.Response) {
	t.Helper()
	body := res.JSON()
	data, _ := body["data"].(map[string]any)
	if w.perm != "" {
		msg, _ := body["message"].(string)
		if !strings.Contains(strings.ToLower(msg), w.perm) {
			t.Errorf("403 message %q does not name %s", msg, w.perm)
		}
		p, _ := data["permission"].(map[string]any)
		named, _ := p["message"].(string)
		if strings.TrimSuffix(strings.ToLower(named), ".") != w.perm {
			t.Errorf("403 data.permission = %v, want %s; body %s", data["permission"], w.perm, res.String())
		}
	}
	if w.field != "" {
		if _, has := data[w.field]; !has {
			t.Errorf("%d body has no field error on %q: %s", res.Status, w.field, res.String())
		}
	}
	if w.text != "" && !strings.Contains(strings.ToLower(res.String()), w.text) {
		t.Errorf("%d body does not name %q: %s", res.Status, w.text, res.String())
	}
}

// ---------------------------------------------------------------------------
// Fixtures.

// fixture is one cell's fresh room and what is in it.
type fixture struct {
	t    *testing.T
	env  *chattest.Env
	cast *cast
	kind kind
	who  actor
	tag  string

	room string

	actor            *chattest.User // nil: anonymous
	actorPerms       []string       // what the actor holds in the room (nil: not a member)
	actorMembership  string
	target           *chattest.User // the member the action is aimed at
	targetMembership string

	// The target's message (with the target's upload attached) carrying the
	// target's 👍 and the actor's 🎉, and the actor's own message with the
	// actor's upload attached. For anonymous the "own" ones are the target's;
	// a superuser has none.
	otherMsg, otherLink, otherReaction string
	otherMedia                         *core.Record
	ownMsg, ownReaction                string
	ownMedia                           *core.Record

	uploaded string // the media id an attach row posted

	banID, reportID string // a row's setup: the ban, the report
}

func build(t *testing.T, env *chattest.Env, c *cast, k kind, r row, who actor, tag string) *fixture {
	t.Helper()
	f := &fixture{t: t, env: env, cast: c, kind: k, who: who, tag: tag}
	defaults := specDefaults[k.roomType]

	// The room, with its creator as a member.
	if k.roomType == "private_messages" {
		res := env.Do(c.creator, "POST", "/api/chat/private", map[string]any{"user": c.member.ID()})
		if res.Status != 201 {
			t.Fatalf("open private room: %d %s", res.Status, res.String())
		}
		f.room = res.Str("id")
	} else {
		room := core.NewRecord(f.collection("chat_rooms"))
		room.Set("name", "room "+tag)
		room.Set("type", k.roomType)
		room.Set("is_public", k.public)
		room.Set("created_by", c.creator.ID())
		f.save(room)
		f.room = room.Id
	}
	t.Cleanup(func() {
		if room, err := env.App.FindRecordById("chat_rooms", f.room); err == nil {
			if err := env.App.Delete(room); err != nil {
				t.Errorf("clean up room: %v", err)
			}
		}
	})
	creatorMembership := f.membershipOf(c.creator)
	if creatorMembership == nil {
		t.Fatalf("the creator is not a member of the new room")
	}
	if got := creatorMembership.GetStringSlice("permissions"); !sameSet(got, defaults.creator) {
		t.Fatalf("creator of a %s holds %v, the spec says %v", k.roomType, got, defaults.creator)
	}
	if k.roomType == "private_messages" {
		if got := f.membershipOf(c.member).GetStringSlice("permissions"); !sameSet(got, defaults.member) {
			t.Fatalf("other member of a private room holds %v, the spec says %v", got, defaults.member)
		}
	}

	// The actor.
	switch who {
	case anonymous:
	case outsider:
		f.actor = c.outsider
	case superuser:
		f.actor = c.super
	case creator:
		f.actor, f.actorPerms, f.actorMembership = c.creator, defaults.creator, creatorMembership.Id
	case member, granted, denied:
		held := defaults.member
		user := c.member
		switch who {
		case granted:
			held, user = r.granted, c.grantee
		case denied:
			held, user = r.denied, c.refused
		}
		if k.roomType == "private_messages" {
			user = c.member // the room's only other member plays every member column
		}
		f.actor, f.actorPerms = user, held
		f.actorMembership = f.setMember(user, held)
	}

	// The target: in a private room the other of its two members.
	switch {
	case k.roomType != "private_messages":
		f.target = c.victim
	case f.actor == c.member:
		f.target = c.creator
	default:
		f.target = c.member
	}
	targetPerms := r.target
	if targetPerms == nil {
		targetPerms = none
	}
	f.targetMembership = f.setMember(f.target, targetPerms)

	// Content.
	f.otherMedia = f.newMedia(f.target)
	f.otherMsg = f.newMessage(f.target, "from the target "+tag, f.otherMedia)
	f.otherLink = f.linkOf(f.otherMsg)
	f.otherReaction = f.newReaction(f.target, f.otherMsg, "👍")
	switch who {
	case anonymous:
		f.ownMsg, f.ownReaction, f.ownMedia = f.otherMsg, f.otherReaction, f.otherMedia
	case superuser:
	default:
		// The outsider's message, upload and reaction date from an earlier membership.
		f.ownMedia = f.newMedia(f.actor)
		// A later millisecond than the target's: a read receipt up to the
		// target's message must not take the actor's for it.
		sent := f.record("chat_messages", f.otherMsg).GetDateTime("created").Time()
		for !time.Now().After(sent.Add(time.Millisecond)) {
			time.Sleep(100 * time.Microsecond)
		}
		f.ownMsg = f.newMessage(f.actor, "from the actor "+tag, f.ownMedia)
		f.ownReaction = f.newReaction(f.actor, f.otherMsg, "🎉")
	}
	return f
}

func (f *fixture) collection(name string) *core.Collection {
	c, err := f.env.App.FindCachedCollectionByNameOrId(name)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) save(r *core.Record) {
	f.t.Helper()
	if err := f.env.App.Save(r); err != nil {
		f.t.Fatalf("fixture: save %s: %v", r.Collection().Name, err)
	}
}

func (f *fixture) membershipOf(u *chattest.User) *core.Record {
	r, err := f.env.App.FindFirstRecordByFilter("chat_room_users", "room = {:room} && user = {:user}",
		dbx.Params{"room": f.room, "user": u.ID()})
	if err != nil {
		return nil
	}
	return r
}

// setMember makes u a member holding held (through Go, not the API under test).
func (f *fixture) setMember(u *chattest.User, held []string) string {
	m := f.membershipOf(u)
	if m == nil {
		m = core.NewRecord(f.collection("chat_room_users"))
		m.Set("room", f.room)
		m.Set("user", u.ID())
		m.Set("created_by", f.cast.creator.ID())
	}
	m.Set("permissions", held)
	f.save(m)
	return m.Id
}

func (f *fixture) newMedia(u *chattest.User) *core.Record {
	file, err := filesystem.NewFileFromBytes(pngBytes, "pic.png")
	if err != nil {
		f.t.Fatal(err)
	}
	m := core.NewRecord(f.collection("chat_media"))
	m.Set("file", file)
	m.Set("uploaded_by", u.ID())
	f.save(m)
	return m
}

func (f *fixture) newMessage(u *chattest.User, text string, media *core.Record) string {
	m := core.NewRecord(f.collection("chat_messages"))
	m.Set("room", f.room)
	m.Set("user", u.ID())
	m.Set("text", text)
	m.Set("media", []string{media.Id})
	f.save(m)
	return m.Id
}

func (f *fixture) newReaction(u *chattest.User, message, reaction string) string {
	r := core.NewRecord(f.collection("chat_message_reactions"))
	r.Set("message", message)
	r.Set("user", u.ID())
	r.Set("reaction", reaction)
	f.save(r)
	return r.Id
}

func (f *fixture) linkOf(message string) string {
	r, err := f.env.App.FindFirstRecordByFilter("chat_message_media", "message = {:m}", dbx.Params{"m": message})
	if err != nil {
		f.t.Fatalf("fixture: the message's attachment link: %v", err)
	}
	return r.Id
}

// snapshot describes the room and everything in it, one line a record.
func (f *fixture) snapshot() string {
	app := f.env.App
	var lines []string
	if room, err := app.FindRecordById("chat_rooms", f.room); err == nil {
		lines = append(lines, fmt.Sprintf("room %s name=%q type=%s public=%v slow=%d", room.Id,
			room.GetString("name"), room.GetString("type"), room.GetBool("is_public"), room.GetInt("slow_mode_seconds")))
	}
	find := func(collection, filter string) []*core.Record {
		records, err := app.FindRecordsByFilter(collection, filter, "", 0, 0, dbx.Params{"room": f.room})
		if err != nil {
			f.t.Fatalf("snapshot %s: %v", collection, err)
		}
		return records
	}
	for _, m := range find("chat_room_users", "room = {:room}") {
		p := m.GetStringSlice("permissions")
		sort.Strings(p)
		lines = append(lines, fmt.Sprintf("member %s user=%s perms=%v muted=%v seen=%q silenced=%q", m.Id,
			m.GetString("user"), p, m.GetBool("muted"), m.GetString("last_seen_at"), m.GetString("silenced_until")))
	}
	for _, m := range find("chat_messages", "room = {:room}") {
		lines = append(lines, fmt.Sprintf("message %s user=%s text=%q edited=%q reply=%s thread=%s/%d mentions=%v pinned=%q by=%s system=%s", m.Id,
			m.GetString("user"), m.GetString("text"), m.GetString("edited_at"), m.GetString("reply_to"),
			m.GetString("thread"), m.GetInt("thread_count"), m.GetStringSlice("mentions"),
			m.GetString("pinned_at"), m.GetString("pinned_by"), m.GetString("system")))
	}
	// The moderation collections, once they exist.
	if f.hasCollection("chat_room_bans") {
		for _, b := range find("chat_room_bans", "room = {:room}") {
			lines = append(lines, fmt.Sprintf("ban %s user=%s until=%q by=%s", b.Id,
				b.GetString("user"), b.GetString("until"), b.GetString("created_by")))
		}
	}
	if f.hasCollection("chat_message_reports") {
		for _, r := range find("chat_message_reports", "message.room = {:room}") {
			lines = append(lines, fmt.Sprintf("report %s message=%s reporter=%s reason=%q", r.Id,
				r.GetString("message"), r.GetString("reporter"), r.GetString("reason")))
		}
	}
	for _, l := range find("chat_message_media", "message.room = {:room}") {
		lines = append(lines, fmt.Sprintf("link %s message=%s media=%s seq=%d", l.Id,
			l.GetString("message"), l.GetString("media"), l.GetInt("sequence")))
	}
	for _, r := range find("chat_message_reactions", "message.room = {:room}") {
		lines = append(lines, fmt.Sprintf("reaction %s message=%s user=%s %q", r.Id,
			r.GetString("message"), r.GetString("user"), r.GetString("reaction")))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (f *fixture) hasCollection(name string) bool {
	_, err := f.env.App.FindCachedCollectionByNameOrId(name)
	return err == nil
}

func (f *fixture) exists(collection, id string) bool {
	_, err := f.env.App.FindRecordById(collection, id)
	return err == nil
}

func (f *fixture) record(collection, id string) *core.Record {
	r, err := f.env.App.FindRecordById(collection, id)
	if err != nil {
		f.t.Fatalf("read %s %s: %v", collection, id, err)
	}
	return r
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func intersect(a, b []string) []string {
	out := []string{}
	for _, p := range a {
		if slices.Contains(b, p) {
			out = append(out, p)
		}
	}
	return out
}

// author is who the actor writes as: themselves, or the creator when a
// superuser writes on a user's behalf.
func (f *fixture) author() *chattest.User {
	if f.who == superuser {
		return f.cast.creator
	}
	return f.actor
}

// onBehalf adds the author to a write body when a superuser sends it.
func (f *fixture) onBehalf(body map[string]any) map[string]any {
	if f.who == superuser {
		body["user"] = f.cast.creator.ID()
	}
	return body
}

// ---------------------------------------------------------------------------
// Actions.

const (
	roomsURL     = "/api/collections/chat_rooms/records"
	membersURL   = "/api/collections/chat_room_users/records"
	messagesURL  = "/api/collections/chat_messages/records"
	mediaURL     = "/api/collections/chat_media/records"
	linksURL     = "/api/collections/chat_message_media/records"
	reactionsURL = "/api/collections/chat_message_reactions/records"
)

func (f *fixture) send(method, path string, body any) *chattest.Response {
	return f.env.Do(f.actor, method, path, body)
}

func filterQuery(filter string) string { return "?perPage=200&filter=" + url.QueryEscape(filter) }

func (f *fixture) viewRoom() *chattest.Response { return f.send("GET", roomsURL+"/"+f.room, nil) }

func (f *fixture) listRooms() *chattest.Response {
	return f.send("GET", roomsURL+filterQuery(fmt.Sprintf("id = %q", f.room)), nil)
}

func (f *fixture) listMembers() *chattest.Response {
	return f.send("GET", membersURL+filterQuery(fmt.Sprintf("room = %q", f.room)), nil)
}

func (f *fixture) listMessages() *chattest.Response {
	return f.send("GET", messagesURL+filterQuery(fmt.Sprintf("room = %q", f.room)), nil)
}

func (f *fixture) viewMessage() *chattest.Response {
	return f.send("GET", messagesURL+"/"+f.otherMsg, nil)
}

func (f *fixture) listReactions() *chattest.Response {
	return f.send("GET", reactionsURL+filterQuery(fmt.Sprintf("message = %q", f.otherMsg)), nil)
}

func (f *fixture) listAttachments() *chattest.Response {
	return f.send("GET", linksURL+filterQuery(fmt.Sprintf("message = %q", f.otherMsg)), nil)
}

func (f *fixture) editRoom() *chattest.Response {
	return f.send("PATCH", roomsURL+"/"+f.room, map[string]any{"name": "renamed " + f.tag})
}

func (f *fixture) changeRoomType() *chattest.Response {
	other := map[string]string{"private_messages": "group", "group": "channel", "channel": "group"}[f.kind.roomType]
	return f.send("PATCH", roomsURL+"/"+f.room, map[string]any{"type": other})
}

func (f *fixture) deleteRoom() *chattest.Response { return f.send("DELETE", roomsURL+"/"+f.room, nil) }

// addMember adds the newcomer; with permissions nil the body has no permissions key.
func addMember(permissions []string) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		body := map[string]any{"room": f.room, "user": f.cast.newcomer.ID()}
		if permissions != nil {
			body["permissions"] = permissions
		}
		return f.send("POST", membersURL, body)
	}
}

// join creates the actor's own membership; with permissions nil the body has no permissions key.
func join(permissions []string) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		user := ""
		if f.actor != nil {
			user = f.actor.ID()
		}
		body := map[string]any{"room": f.room, "user": user}
		if permissions != nil {
			body["permissions"] = permissions
		}
		return f.send("POST", membersURL, body)
	}
}

func (f *fixture) removeTarget() *chattest.Response {
	return f.send("DELETE", membersURL+"/"+f.targetMembership, nil)
}

func setTargetPermissions(permissions []string) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		return f.send("PATCH", membersURL+"/"+f.targetMembership, map[string]any{"permissions": permissions})
	}
}

func (f *fixture) leave() *chattest.Response {
	return f.send("DELETE", membersURL+"/"+f.actorMembership, nil)
}

func (f *fixture) muteMyself() *chattest.Response {
	return f.send("PATCH", membersURL+"/"+f.actorMembership,
		map[string]any{"muted": true, "last_seen_at": "2030-01-02 03:04:05.000Z"})
}

func (f *fixture) muteTarget() *chattest.Response {
	return f.send("PATCH", membersURL+"/"+f.targetMembership, map[string]any{"muted": true})
}

func setMyPermissions(permissions []string) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		return f.send("PATCH", membersURL+"/"+f.actorMembership, map[string]any{"permissions": permissions})
	}
}

func addToMyPermissions(p string) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		held := slices.Clone(f.actorPerms)
		if !slices.Contains(held, p) {
			held = append(held, p)
		}
		return f.send("PATCH", membersURL+"/"+f.actorMembership, map[string]any{"permissions": held})
	}
}

func (f *fixture) postMessage() *chattest.Response {
	return f.send("POST", messagesURL, f.onBehalf(map[string]any{"room": f.room, "text": "posted " + f.tag}))
}

func (f *fixture) messageFor(own bool) string {
	if own {
		return f.ownMsg
	}
	return f.otherMsg
}

func editMessage(own bool) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		return f.send("PATCH", messagesURL+"/"+f.messageFor(own), map[string]any{"text": "edited " + f.tag})
	}
}

func deleteMessage(own bool) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		return f.send("DELETE", messagesURL+"/"+f.messageFor(own), nil)
	}
}

func (f *fixture) react() *chattest.Response {
	return f.send("POST", reactionsURL, f.onBehalf(map[string]any{"message": f.otherMsg, "reaction": "👍"}))
}

func removeReaction(own bool) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		id := f.otherReaction
		if own {
			id = f.ownReaction
		}
		return f.send("DELETE", reactionsURL+"/"+id, nil)
	}
}

func attachMedia(foreign bool) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		var mediaID string
		if foreign {
			mediaID = f.otherMedia.Id // uploaded by the target
		} else {
			uploader := f.actor
			if f.who == anonymous || f.who == superuser {
				uploader = f.cast.creator
			}
			up := f.env.Upload(uploader, "POST", mediaURL, nil, chattest.File{Field: "file", Name: "pic.png", Content: pngBytes})
			if up.Status != 200 {
				f.t.Fatalf("upload as %s: %d %s", uploader.Record.Email(), up.Status, up.String())
			}
			mediaID = up.Str("id")
			if got := f.record("chat_media", mediaID).GetString("uploaded_by"); got != uploader.ID() {
				f.t.Errorf("uploaded_by = %q, want the uploader %q", got, uploader.ID())
			}
		}
		f.uploaded = mediaID
		return f.send("POST", messagesURL, f.onBehalf(map[string]any{
			"room": f.room, "text": "picture " + f.tag, "media": []string{mediaID},
		}))
	}
}

func download(own, withToken bool) func(*fixture) *chattest.Response {
	return func(f *fixture) *chattest.Response {
		media := f.otherMedia
		if own {
			media = f.ownMedia
		}
		path := fmt.Sprintf("/api/files/chat_media/%s/%s", media.Id, media.GetString("file"))
		if withToken && f.actor != nil {
			res := f.send("POST", "/api/files/token", nil)
			if res.Status != 200 || res.Str("token") == "" {
				f.t.Fatalf("file token: %d %s", res.Status, res.String())
			}
			path += "?token=" + url.QueryEscape(res.Str("token"))
		}
		return f.send("GET", path, nil)
	}
}

// ---------------------------------------------------------------------------
// Effects of successful cells.

func (f *fixture) checkNeverSucceeds(w want, res *chattest.Response) {
	f.t.Errorf("the table expects %s, which this action should never allow", w)
}

func (f *fixture) checkViewedRoom(_ want, res *chattest.Response) {
	if got := res.Str("id"); got != f.room {
		f.t.Errorf("viewed room id %q, want %q", got, f.room)
	}
}

func (f *fixture) checkViewedMessage(_ want, res *chattest.Response) {
	if got := res.Str("id"); got != f.otherMsg {
		f.t.Errorf("viewed message id %q, want %q", got, f.otherMsg)
	}
}

func checkListed(id func(*fixture) string) func(*fixture, want, *chattest.Response) {
	return func(f *fixture, w want, res *chattest.Response) {
		wantID := id(f)
		found := false
		for _, item := range res.Items() {
			if item["id"] == wantID {
				found = true
			}
		}
		if found != (w.list == inList) {
			f.t.Errorf("record %s listed: %v, want %v; body %s", wantID, found, w.list == inList, res.String())
		}
		if w.list == notInList && len(res.Items()) > 0 {
			f.t.Errorf("a caller who may not see the room got %d items: %s", len(res.Items()), res.String())
		}
	}
}

func (f *fixture) checkRoomRenamed(want, *chattest.Response) {
	if got := f.record("chat_rooms", f.room).GetString("name"); got != "renamed "+f.tag {
		f.t.Errorf("room name %q after a successful edit", got)
	}
}

func (f *fixture) checkRoomDeleted(want, *chattest.Response) {
	if left := f.snapshot(); left != "" {
		f.t.Errorf("the room or its rows survived its deletion:\n%s", left)
	}
	for _, id := range []string{f.otherMsg, f.ownMsg} {
		if id != "" && f.exists("chat_messages", id) {
			f.t.Errorf("message %s survived its room", id)
		}
	}
	if n := f.env.Count("chat_message_media", "message = {:m}", dbx.Params{"m": f.otherMsg}); n != 0 {
		f.t.Errorf("%d attachment links survived the room", n)
	}
	if n := f.env.Count("chat_message_reactions", "message = {:m}", dbx.Params{"m": f.otherMsg}); n != 0 {
		f.t.Errorf("%d reactions survived the room", n)
	}
}

func (f *fixture) newcomerMembership() *core.Record {
	m := f.membershipOf(f.cast.newcomer)
	if m == nil {
		f.t.Fatalf("no membership for the added user")
	}
	return m
}

// checkAddedWithDefaults: the type's member defaults, never more than the adder holds.
func (f *fixture) checkAddedWithDefaults(want, *chattest.Response) {
	expected := specDefaults[f.kind.roomType].member
	if f.who != superuser {
		expected = intersect(expected, f.actorPerms)
	}
	m := f.newcomerMembership()
	if got := m.GetStringSlice("permissions"); !sameSet(got, expected) {
		f.t.Errorf("added member holds %v, want %v (the %s member defaults ∩ the adder's %v)", got, expected, f.kind.roomType, f.actorPerms)
	}
	if f.who != superuser && m.GetString("created_by") != f.actor.ID() {
		f.t.Errorf("membership created_by %q, want the adder", m.GetString("created_by"))
	}
}

func checkAddedWith(expected []string) func(*fixture, want, *chattest.Response) {
	return func(f *fixture, _ want, _ *chattest.Response) {
		if got := f.newcomerMembership().GetStringSlice("permissions"); !sameSet(got, expected) {
			f.t.Errorf("added member holds %v, want %v", got, expected)
		}
	}
}

func checkJoinedWith(asked []string) func(*fixture, want, *chattest.Response) {
	return func(f *fixture, _ want, _ *chattest.Response) {
		m := f.membershipOf(f.actor)
		if m == nil {
			f.t.Fatalf("no membership after joining")
		}
		expected := specDefaults[f.kind.roomType].member
		if got := m.GetStringSlice("permissions"); !sameSet(got, expected) {
			f.t.Errorf("joiner holds %v, want the %s member defaults %v", got, f.kind.roomType, expected)
		}
	}
}

func (f *fixture) checkTargetRemoved(want, *chattest.Response) {
	if f.exists("chat_room_users", f.targetMembership) {
		f.t.Errorf("the removed membership still exists")
	}
	if !f.exists("chat_rooms", f.room) {
		f.t.Errorf("removing a member removed the room")
	}
}

func checkTargetPermissions(expected []string) func(*fixture, want, *chattest.Response) {
	return func(f *fixture, _ want, _ *chattest.Response) {
		if got := f.record("chat_room_users", f.targetMembership).GetStringSlice("permissions"); !sameSet(got, expected) {
			f.t.Errorf("target holds %v, want %v", got, expected)
		}
	}
}

func (f *fixture) checkLeft(want, *chattest.Response) {
	if f.exists("chat_room_users", f.actorMembership) {
		f.t.Errorf("the membership still exists after leaving")
	}
}

func (f *fixture) checkMutedMyself(want, *chattest.Response) {
	m := f.record("chat_room_users", f.actorMembership)
	if !m.GetBool("muted") || m.GetDateTime("last_seen_at").IsZero() {
		f.t.Errorf("own membership not updated: muted=%v last_seen_at=%q", m.GetBool("muted"), m.GetString("last_seen_at"))
	}
}

func (f *fixture) checkTargetMuted(want, *chattest.Response) {
	if !f.record("chat_room_users", f.targetMembership).GetBool("muted") {
		f.t.Errorf("target not muted after a successful update")
	}
}

func checkMyPermissions(expected []string) func(*fixture, want, *chattest.Response) {
	return func(f *fixture, _ want, _ *chattest.Response) {
		if got := f.record("chat_room_users", f.actorMembership).GetStringSlice("permissions"); !sameSet(got, expected) {
			f.t.Errorf("actor holds %v, want %v", got, expected)
		}
	}
}

func checkMyPermissionsPlus(p string) func(*fixture, want, *chattest.Response) {
	return func(f *fixture, _ want, _ *chattest.Response) {
		expected := slices.Clone(f.actorPerms)
		if !slices.Contains(expected, p) {
			expected = append(expected, p)
		}
		if got := f.record("chat_room_users", f.actorMembership).GetStringSlice("permissions"); !sameSet(got, expected) {
			f.t.Errorf("actor holds %v, want %v", got, expected)
		}
	}
}

func (f *fixture) checkPosted(_ want, res *chattest.Response) {
	m := f.record("chat_messages", res.Str("id"))
	if m.GetString("room") != f.room || m.GetString("text") != "posted "+f.tag || m.GetString("user") != f.author().ID() {
		f.t.Errorf("posted message room=%s text=%q user=%s, want room %s and author %s", m.GetString("room"),
			m.GetString("text"), m.GetString("user"), f.room, f.author().ID())
	}
}

func checkEdited(own bool) func(*fixture, want, *chattest.Response) {
	return func(f *fixture, _ want, _ *chattest.Response) {
		m := f.record("chat_messages", f.messageFor(own))
		if m.GetString("text") != "edited "+f.tag || m.GetDateTime("edited_at").IsZero() {
			f.t.Errorf("after a successful edit: text=%q edited_at=%q", m.GetString("text"), m.GetString("edited_at"))
		}
	}
}

func checkMessageDeleted(own bool) func(*fixture, want, *chattest.Response) {
	return func(f *fixture, _ want, _ *chattest.Response) {
		id := f.messageFor(own)
		if f.exists("chat_messages", id) {
			f.t.Errorf("message %s survived its deletion", id)
		}
		if n := f.env.Count("chat_message_media", "message = {:m}", dbx.Params{"m": id}); n != 0 {
			f.t.Errorf("%d attachment links survived their message", n)
		}
		if n := f.env.Count("chat_message_reactions", "message = {:m}", dbx.Params{"m": id}); n != 0 {
			f.t.Errorf("%d reactions survived their message", n)
		}
		other := f.messageFor(!own)
		if other != "" && other != id && !f.exists("chat_messages", other) {
			f.t.Errorf("deleting one message removed another")
		}
	}
}

func (f *fixture) checkReacted(want, *chattest.Response) {
	n := f.env.Count("chat_message_reactions", "message = {:m} && user = {:u} && reaction = '👍'",
		dbx.Params{"m": f.otherMsg, "u": f.author().ID()})
	if n != 1 {
		f.t.Errorf("%d 👍 reactions by the author, want 1", n)
	}
}

func checkReactionRemoved(own bool) func(*fixture, want, *chattest.Response) {
	return func(f *fixture, _ want, _ *chattest.Response) {
		removed, kept := f.ownReaction, f.otherReaction
		if !own {
			removed, kept = kept, removed
		}
		if f.exists("chat_message_reactions", removed) {
			f.t.Errorf("the reaction survived its deletion")
		}
		if kept != "" && kept != removed && !f.exists("chat_message_reactions", kept) {
			f.t.Errorf("deleting one reaction removed another")
		}
	}
}

func (f *fixture) checkAttached(_ want, res *chattest.Response) {
	mediaID := f.uploaded
	m := f.record("chat_messages", res.Str("id"))
	if m.GetString("user") != f.author().ID() || m.GetString("room") != f.room {
		f.t.Errorf("message user=%s room=%s, want the author %s in %s", m.GetString("user"), m.GetString("room"), f.author().ID(), f.room)
	}
	links, err := f.env.App.FindRecordsByFilter("chat_message_media", "message = {:m}", "", 0, 0, dbx.Params{"m": m.Id})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(links) != 1 || links[0].GetString("media") != mediaID || links[0].GetInt("sequence") != 0 {
		f.t.Errorf("attachment rows %v, want one link to %s at sequence 0", links, mediaID)
	}
}

func (f *fixture) checkDownloaded(_ want, res *chattest.Response) {
	if !bytes.Equal(res.Body, pngBytes) {
		f.t.Errorf("downloaded %d bytes, not the uploaded file", len(res.Body))
	}
}

// ---------------------------------------------------------------------------
// The table itself.

// TestMatrixTable checks the table is complete and that every permission
// rule appears both granting and refusing.
func TestMatrixTable(t *testing.T) {
	for _, r := range matrix {
		if len(r.want) != len(kinds) {
			t.Errorf("%q: outcomes for %d room kinds, want %d", r.action, len(r.want), len(kinds))
		}
		for _, k := range kinds {
			cs, has := r.want[k.name]
			if !has {
				t.Errorf("%q: no outcomes for %s", r.action, k.name)
				continue
			}
			for who, w := range cs {
				if w.skip == "" && w.status == 0 {
					t.Errorf("%q/%s/%s: empty cell", r.action, k.name, actorNames[who])
				}
			}
			if r.granted == nil && cs[granted].skip == "" {
				t.Errorf("%q/%s: no permission gates the action, so the granted cell must be n/a", r.action, k.name)
			}
		}
	}
	for _, p := range allTen {
		var grants, refuses bool
		for _, r := range matrix {
			for _, cs := range r.want {
				if slices.Contains(r.granted, p) && cs[granted].ok() {
					grants = true
				}
				for _, w := range cs {
					if w.status == 403 && w.perm == p {
						refuses = true
					}
				}
			}
		}
		if !grants || !refuses {
			t.Errorf("%s: granting cell %v, refusing cell %v; the matrix needs both", p, grants, refuses)
		}
	}
}

// ---------------------------------------------------------------------------
// Creating rooms. Before a room exists there is nobody in it, so the actors
// are only: anonymous, a chat user (alice; bob is the other user), superuser.

type creationCell struct {
	t          *testing.T
	env        *chattest.Env
	who        string
	actor      *chattest.User // nil: anonymous
	alice, bob *chattest.User
	existing   []string // private rooms the row opened before the action
}

type creationRow struct {
	action string
	note   string
	do     func(*creationCell) *chattest.Response
	check  func(*creationCell, *chattest.Response) // success effect
	want   [3]want                                 // anonymous, user, superuser
}

var (
	s201 = want{status: 201}
	s401 = want{status: 401}
	s403 = want{status: 403} // RequireAuth(USERS): a superuser is not a chat user
)

var creationActors = [3]string{"anonymous", "user", "superuser"}

var creationMatrix = []creationRow{
	{
		action: "create a group room", note: "the creator becomes a member holding all nine; a superuser is nobody's creator",
		do: createRoom("group", false), check: checkCreatedRoom("group", false),
		//     anonymous user superuser
		want: [3]want{bad(""), ok, ok},
	},
	{
		action: "create a channel",
		do:     createRoom("channel", false), check: checkCreatedRoom("channel", false),
		want: [3]want{bad(""), ok, ok},
	},
	{
		action: "create a group room naming bob as created_by", note: "created_by is server-set for users; the dashboard (superuser) may set it",
		do: createRoom("group", true), check: checkCreatedRoom("group", true),
		want: [3]want{bad(""), ok, ok},
	},
	{
		action: "create a private_messages room through the records API", note: "users open private rooms with POST /api/chat/private only",
		do: createRoom("private_messages", false), check: checkCreatedRoom("private_messages", false),
		want: [3]want{bad(""), bad("type"), ok},
	},
	{
		action: "open a private room with bob", note: "201 and both members with the private defaults",
		do: openPrivate(func(c *creationCell) string { return c.bob.ID() }), check: checkOpenedPrivate,
		want: [3]want{s401, s201, s403},
	},
	{
		action: "open the private room bob already opened with me", note: "200 and the same room",
		do: func(c *creationCell) *chattest.Response {
			first := c.env.Do(c.bob, "POST", "/api/chat/private", map[string]any{"user": c.alice.ID()})
			if first.Status != 201 {
				c.t.Fatalf("bob opens the room: %d %s", first.Status, first.String())
			}
			c.existing = append(c.existing, first.Str("id"))
			return openPrivate(func(c *creationCell) string { return c.bob.ID() })(c)
		},
		check: func(c *creationCell, res *chattest.Response) {
			if res.Str("id") != c.existing[0] {
				c.t.Errorf("got room %q, want the existing %s", res.Str("id"), c.existing[0])
			}
			if n := c.env.Count("chat_rooms", "type = 'private_messages'"); n != 1 {
				c.t.Errorf("%d private rooms, want 1", n)
			}
		},
		want: [3]want{s401, ok, s403},
	},
	{
		action: "open a private room with myself",
		do:     openPrivate(func(c *creationCell) string { return c.alice.ID() }), check: nil,
		want: [3]want{s401, bad("user"), s403},
	},
	{
		action: "open a private room with an unknown user",
		do:     openPrivate(func(*creationCell) string { return "nosuchuser1234" }), check: nil,
		want: [3]want{s401, bad("user"), s403},
	},
}

func TestMatrixRoomCreation(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	alice, bob, super := env.NewUser("alice"), env.NewUser("bob"), env.Superuser()
	actors := [3]*chattest.User{nil, alice, super}
	for _, r := range creationMatrix {
		for i, w := range r.want {
			t.Run(r.action+"/"+creationActors[i], func(t *testing.T) {
				c := &creationCell{t: t, env: env, who: creationActors[i], actor: actors[i], alice: alice, bob: bob}
				t.Cleanup(func() {
					rooms, _ := env.App.FindAllRecords("chat_rooms")
					for _, room := range rooms {
						if err := env.App.Delete(room); err != nil {
							t.Errorf("clean up: %v", err)
						}
					}
				})
				res := r.do(c)
				if res.Status != w.status {
					t.Fatalf("%s by %s: status %d, want %s; body %s", r.action, c.who, res.Status, w, res.String())
				}
				assertBody(t, w, res)
				if !w.ok() {
					// Nothing half-written: only what the row set up beforehand remains.
					if n := env.Count("chat_rooms", ""); n != len(c.existing) {
						t.Errorf("a refused request left %d rooms, want %d", n, len(c.existing))
					}
					if n := env.Count("chat_room_users", ""); n != 2*len(c.existing) {
						t.Errorf("a refused request left %d memberships, want %d", n, 2*len(c.existing))
					}
					return
				}
				if r.check == nil {
					t.Fatalf("the table expects %s, which this action should never allow", w)
				}
				r.check(c, res)
			})
		}
	}
}

func createRoom(roomType string, claimBob bool) func(*creationCell) *chattest.Response {
	return func(c *creationCell) *chattest.Response {
		body := map[string]any{"name": "new " + roomType, "type": roomType}
		if claimBob {
			body["created_by"] = c.bob.ID()
		}
		return c.env.Do(c.actor, "POST", roomsURL, body)
	}
}

func checkCreatedRoom(roomType string, claimBob bool) func(*creationCell, *chattest.Response) {
	return func(c *creationCell, res *chattest.Response) {
		room, err := c.env.App.FindRecordById("chat_rooms", res.Str("id"))
		if err != nil {
			c.t.Fatalf("created room: %v", err)
		}
		if room.GetString("type") != roomType {
			c.t.Errorf("type %q, want %q", room.GetString("type"), roomType)
		}
		var creator *chattest.User
		switch {
		case c.who == "user":
			creator = c.alice // server-set, whatever the body claims
		case claimBob:
			creator = c.bob // the dashboard sets it
		}
		if creator == nil {
			if got := room.GetString("created_by"); got != "" {
				c.t.Errorf("created_by %q, want none", got)
			}
			if n := c.env.Count("chat_room_users", "room = {:r}", dbx.Params{"r": room.Id}); n != 0 {
				c.t.Errorf("%d members in a room nobody created as a user", n)
			}
			return
		}
		if got := room.GetString("created_by"); got != creator.ID() {
			c.t.Errorf("created_by %q, want %q", got, creator.ID())
		}
		members, err := c.env.App.FindRecordsByFilter("chat_room_users", "room = {:r}", "", 0, 0, dbx.Params{"r": room.Id})
		if err != nil {
			c.t.Fatal(err)
		}
		if len(members) != 1 || members[0].GetString("user") != creator.ID() {
			c.t.Fatalf("members %v, want just the creator", members)
		}
		if got := members[0].GetStringSlice("permissions"); !sameSet(got, specDefaults[roomType].creator) {
			c.t.Errorf("creator holds %v, the spec says %v", got, specDefaults[roomType].creator)
		}
	}
}

func openPrivate(other func(*creationCell) string) func(*creationCell) *chattest.Response {
	return func(c *creationCell) *chattest.Response {
		return c.env.Do(c.actor, "POST", "/api/chat/private", map[string]any{"user": other(c)})
	}
}

func checkOpenedPrivate(c *creationCell, res *chattest.Response) {
	room, err := c.env.App.FindRecordById("chat_rooms", res.Str("id"))
	if err != nil {
		c.t.Fatalf("opened room: %v", err)
	}
	if room.GetString("type") != "private_messages" || room.GetString("created_by") != c.alice.ID() {
		c.t.Errorf("room type %q created_by %q", room.GetString("type"), room.GetString("created_by"))
	}
	for _, u := range []*chattest.User{c.alice, c.bob} {
		m, err := c.env.App.FindFirstRecordByFilter("chat_room_users", "room = {:r} && user = {:u}", dbx.Params{"r": room.Id, "u": u.ID()})
		if err != nil {
			c.t.Errorf("%s is not a member: %v", u.Record.Email(), err)
			continue
		}
		if got := m.GetStringSlice("permissions"); !sameSet(got, specDefaults["private_messages"].member) {
			c.t.Errorf("%s holds %v, the spec says %v", u.Record.Email(), got, specDefaults["private_messages"].member)
		}
	}
	if n := c.env.Count("chat_room_users", "room = {:r}", dbx.Params{"r": room.Id}); n != 2 {
		c.t.Errorf("%d members, want 2", n)
	}
}
