package chat

import (
	"fmt"
	"slices"
)

// The ten room permissions, the values of chat_room_users.permissions.
const (
	CanAddUsers          = "can_add_users"
	CanRemoveUsers       = "can_remove_users"
	CanCreateMessages    = "can_create_messages"
	CanDeleteMessages    = "can_delete_messages"
	CanDeleteOwnMessages = "can_delete_own_messages"
	CanEditMessages      = "can_edit_messages"
	CanEditOwnMessages   = "can_edit_own_messages"
	CanEditRoom          = "can_edit_room"
	CanDeleteRoom        = "can_delete_room"
	// CanPinMessages pins and unpins a room's messages (PATCH {"pinned": …}).
	CanPinMessages = "can_pin_messages"
)

// AllPermissions lists the ten permissions in the spec's order (the nine of
// version 1, then can_pin_messages). Group and channel creators hold them all.
var AllPermissions = Permissions{
	CanAddUsers, CanRemoveUsers, CanCreateMessages, CanDeleteMessages,
	CanDeleteOwnMessages, CanEditMessages, CanEditOwnMessages, CanEditRoom, CanDeleteRoom,
	CanPinMessages,
}

// Permissions is a set of room permissions. Order carries no meaning.
type Permissions []string

var specRoomDefaults = map[string]RoomDefaults{
	RoomPrivateMessages: {
		Creator: Permissions{CanCreateMessages, CanEditOwnMessages, CanDeleteOwnMessages, CanDeleteRoom},
		Member:  Permissions{CanCreateMessages, CanEditOwnMessages, CanDeleteOwnMessages, CanDeleteRoom},
	},
	RoomGroup: {
		Creator: AllPermissions,
		Member:  Permissions{CanAddUsers, CanCreateMessages, CanEditOwnMessages, CanDeleteOwnMessages},
	},
	RoomChannel: {
		Creator: AllPermissions,
		Member:  Permissions{CanAddUsers},
	},
}

// IsPermission reports whether p is one of the ten permissions.
func IsPermission(p string) bool {
	return slices.Contains(AllPermissions, p)
}

// Validate fails on a value that is not one of the ten permissions.
func (ps Permissions) Validate() error {
	for _, p := range ps {
		if !IsPermission(p) {
			return fmt.Errorf("unknown permission %q", p)
		}
	}
	return nil
}

// Has reports whether the set holds p.
func (ps Permissions) Has(p string) bool {
	return slices.Contains(ps, p)
}

// Missing returns the members of want that ps lacks, in want's order.
func (ps Permissions) Missing(want Permissions) Permissions {
	var missing Permissions
	for _, p := range want {
		if !ps.Has(p) && !missing.Has(p) {
			missing = append(missing, p)
		}
	}
	return missing
}

// Intersect returns the members of ps that other holds too, in ps's order.
func (ps Permissions) Intersect(other Permissions) Permissions {
	out := Permissions{}
	for _, p := range ps {
		if other.Has(p) && !out.Has(p) {
			out = append(out, p)
		}
	}
	return out
}

// Diff returns what changes from before to after: added then removed.
func Diff(before, after Permissions) (added, removed Permissions) {
	return before.Missing(after), after.Missing(before)
}

// PermissionDenied explains which permission an actor lacks.
type PermissionDenied struct {
	Permission string
	Reason     string
}

// Error is Reason, or a message naming the missing permission.
func (e *PermissionDenied) Error() string {
	if e.Reason != "" {
		return e.Reason
	}
	return fmt.Sprintf("missing the %s permission in this room", e.Permission)
}

// CheckGrant decides whether an actor holding actor may add a member with
// the requested permissions: only permissions the actor holds may be granted.
func CheckGrant(actor, requested Permissions) error {
	return checkHolds(actor, CanAddUsers, requested, "you cannot grant %s: you do not hold it in this room")
}

// CheckPermissionChange decides whether an actor may change another member's
// permissions from before to after: it needs can_add_users, and must hold
// every permission added or removed and every permission the target holds,
// so nobody demotes someone above them.
func CheckPermissionChange(actor, before, after Permissions) error {
	if !actor.Has(CanAddUsers) {
		return &PermissionDenied{Permission: CanAddUsers, Reason: "changing another member's permissions needs can_add_users"}
	}
	added, removed := Diff(before, after)
	for _, group := range []Permissions{added, removed, before} {
		if missing := actor.Missing(group); len(missing) > 0 {
			return &PermissionDenied{
				Permission: missing[0],
				Reason:     fmt.Sprintf("you cannot change the permissions of a member holding or gaining %s: you do not hold it", missing[0]),
			}
		}
	}
	return nil
}

// CheckOwnPermissionChange decides whether a member may change their own
// permissions from before to after: dropping is allowed, adding never.
func CheckOwnPermissionChange(before, after Permissions) error {
	if added, _ := Diff(before, after); len(added) > 0 {
		return &PermissionDenied{
			Permission: added[0],
			Reason:     fmt.Sprintf("you cannot give yourself %s", added[0]),
		}
	}
	return nil
}

// CheckRemoval decides whether an actor may remove another member holding
// target: it needs can_remove_users and every permission the target holds.
func CheckRemoval(actor, target Permissions) error {
	return checkHolds(actor, CanRemoveUsers, target, "you cannot remove a member holding %s: you do not hold it")
}

// checkHolds is the rule of CheckGrant and CheckRemoval: the actor needs
// gate and every permission of want; reason (with the missing permission
// for %s) explains a permission of want the actor lacks.
func checkHolds(actor Permissions, gate string, want Permissions, reason string) error {
	if !actor.Has(gate) {
		return &PermissionDenied{Permission: gate}
	}
	if missing := actor.Missing(want); len(missing) > 0 {
		return &PermissionDenied{Permission: missing[0], Reason: fmt.Sprintf(reason, missing[0])}
	}
	return nil
}

// MessageAction is what an actor wants to do with a message.
type MessageAction int

const (
	EditMessage MessageAction = iota
	DeleteMessage
)

// CheckMessageAction decides whether an actor may edit or delete a message;
// own tells whether the actor wrote it.
func CheckMessageAction(actor Permissions, action MessageAction, own bool) error {
	anyPerm, ownPerm := CanEditMessages, CanEditOwnMessages
	if action == DeleteMessage {
		anyPerm, ownPerm = CanDeleteMessages, CanDeleteOwnMessages
	}
	if actor.Has(anyPerm) || (own && actor.Has(ownPerm)) {
		return nil
	}
	if own {
		return &PermissionDenied{Permission: ownPerm, Reason: fmt.Sprintf("missing %s (or %s) in this room", ownPerm, anyPerm)}
	}
	return &PermissionDenied{Permission: anyPerm}
}
