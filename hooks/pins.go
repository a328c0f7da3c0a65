package hooks

import (
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
)

// PinInput is the write-only body key of a pin request: PATCH a message with
// {"pinned": true} pins it, {"pinned": false} unpins it. It is not a field.
const PinInput = "pinned"

// pinFields are server-set: only a pin request (or a superuser) writes them.
var pinFields = []string{"pinned_at", "pinned_by"}

// pinRequest handles a pin request on a message and reports whether the
// request was one. A member holding can_pin_messages pins and unpins (no
// can_edit_* needed); the request may change nothing else.
func (h messages) pinRequest(e *core.RecordRequestEvent) (bool, error) {
	info, err := e.RequestInfo()
	if err != nil {
		return true, err
	}
	raw, ok := info.Body[PinInput]
	if !ok {
		return false, nil
	}
	if len(info.Body) != 1 {
		return true, e.BadRequestError("A pin request may change nothing else.",
			fieldError(PinInput, "pin_only", "a request with pinned may change nothing else"))
	}
	var pinned bool
	switch v := raw.(type) {
	case bool:
		pinned = v
	case string:
		if v != "true" && v != "false" {
			return true, e.BadRequestError("Invalid pinned.", fieldError(PinInput, "invalid_pinned", "pinned must be true or false"))
		}
		pinned = v == "true"
	default:
		return true, e.BadRequestError("Invalid pinned.", fieldError(PinInput, "invalid_pinned", "pinned must be true or false"))
	}

	actorID := ""
	if !isSuperuser(e.RequestEvent) {
		actorID = authUserID(e.RequestEvent, h.settings)
		membership, err := findMembership(e.App, e.Record.Original().GetString("room"), actorID)
		if err != nil {
			return true, err
		}
		if !permissionsOf(membership).Has(chat.CanPinMessages) {
			return true, forbidden(e.RequestEvent, &chat.PermissionDenied{Permission: chat.CanPinMessages})
		}
	}
	if pinned {
		e.Record.Set("pinned_at", types.NowDateTime())
		e.Record.Set("pinned_by", actorID)
	} else {
		e.Record.Set("pinned_at", "")
		e.Record.Set("pinned_by", "")
	}
	return true, e.Next()
}

// checkPinFields refuses a member's write of the server-set pin fields
// outside a pin request (a superuser, the dashboard, may set them).
func checkPinFields(e *core.RecordRequestEvent) error {
	if isSuperuser(e.RequestEvent) {
		return nil
	}
	for _, field := range pinFields {
		if e.Record.Collection().Fields.GetByName(field) == nil {
			continue
		}
		changed := e.Record.GetString(field) != ""
		if !e.Record.IsNew() {
			changed = e.Record.GetString(field) != e.Record.Original().GetString(field)
		}
		if changed {
			return e.BadRequestError("Pins are set with {\"pinned\": true|false}.",
				fieldError(field, "server_set", field+` is set by the server: PATCH {"pinned": true|false}`))
		}
	}
	return nil
}
