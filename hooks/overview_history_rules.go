package hooks

import (
	"regexp"

	"github.com/pocketbase/pocketbase/core"
)

// With pbchat's rules, a message is listed to a member of its room, and its
// attachments, reactions and their media are viewable by the same members:
// `<user> && room.chat_room_users_via_room.user ?= @request.auth.id` on the
// message, the same path one relation further on what hangs from it
// (`message.room.…`), and on media `uploaded_by = @request.auth.id || chat_message_media_via_media.message.room.…`,
// true of any media an attachment of a listed message links to. PocketBase
// evaluates those rules again, as a join of four tables per expanded
// collection (a third of a history page's CPU, pprof). When the rules are
// exactly these, what the list rule let through already answers them: the
// related records are loaded without the joins. Any other rule (a host app
// that changed one) is evaluated as PocketBase does.

// memberRule matches pbchat's list rule of a collection whose records
// belong to a room (room.…) and captures its "is a chat user" part.
var memberRule = regexp.MustCompile(`^(@request\.auth\.id != "" && @request\.auth\.collectionName = "\w+") && room\.chat_room_users_via_room\.user \?= @request\.auth\.id$`)

// viewImpliedByList reports whether related's view rule holds for every
// record of related whose field points at a record listed under listed's
// list rule for the same caller.
func viewImpliedByList(listed, related *core.Collection, field string) bool {
	m := listRuleParts(listed)
	return m != nil && related.ViewRule != nil &&
		*related.ViewRule == m[1]+" && "+field+".room.chat_room_users_via_room.user ?= @request.auth.id"
}

// nestedViewImplied reports whether to's view rule holds for every record of
// to that a record of related (viewable as viewImpliedByList says) points at
// through nested: pbchat's media rule, reached through an attachment.
func nestedViewImplied(listed, related *core.Collection, field string, nested *core.RelationField, to *core.Collection) bool {
	m := listRuleParts(listed)
	return m != nil && to.ViewRule != nil &&
		*to.ViewRule == m[1]+" && (uploaded_by = @request.auth.id || "+related.Name+"_via_"+nested.Name+"."+field+".room.chat_room_users_via_room.user ?= @request.auth.id)"
}

func listRuleParts(listed *core.Collection) []string {
	if listed.ListRule == nil {
		return nil
	}
	return memberRule.FindStringSubmatch(*listed.ListRule)
}
