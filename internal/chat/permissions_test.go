package chat

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Shorthands for the permission sets the tables below use.
var (
	allTen       = Permissions{CanAddUsers, CanRemoveUsers, CanCreateMessages, CanDeleteMessages, CanDeleteOwnMessages, CanEditMessages, CanEditOwnMessages, CanEditRoom, CanDeleteRoom, CanPinMessages}
	groupMember  = Permissions{CanAddUsers, CanCreateMessages, CanEditOwnMessages, CanDeleteOwnMessages}
	channelSub   = Permissions{CanAddUsers}
	pmMember     = Permissions{CanCreateMessages, CanEditOwnMessages, CanDeleteOwnMessages, CanDeleteRoom}
	moderator    = Permissions{CanAddUsers, CanRemoveUsers, CanCreateMessages, CanDeleteMessages, CanEditMessages}
	noPerms      = Permissions{}
	remover      = Permissions{CanRemoveUsers}
	removerAdder = Permissions{CanRemoveUsers, CanAddUsers, CanCreateMessages}
)

// checkDenied asserts err's outcome: nil when wantPerm is "", otherwise a
// *PermissionDenied naming wantPerm both in its field and in its message.
func checkDenied(t *testing.T, err error, wantPerm string) {
	t.Helper()
	if wantPerm == "" {
		if err != nil {
			t.Errorf("got error %q, want nil", err)
		}
		return
	}
	if err == nil {
		t.Errorf("got nil error, want one denying %s", wantPerm)
		return
	}
	var pd *PermissionDenied
	if !errors.As(err, &pd) {
		t.Errorf("error %q is %T, want *PermissionDenied", err, err)
		return
	}
	if pd.Permission != wantPerm {
		t.Errorf("denied permission = %q, want %q (error %q)", pd.Permission, wantPerm, err)
	}
	if !strings.Contains(err.Error(), wantPerm) {
		t.Errorf("error message %q does not name %s", err, wantPerm)
	}
}

func TestAllPermissions(t *testing.T) {
	if !slices.Equal(AllPermissions, allTen) {
		t.Errorf("AllPermissions = %v, want the spec's ten in order %v", AllPermissions, allTen)
	}
	if err := AllPermissions.Validate(); err != nil {
		t.Errorf("AllPermissions.Validate() = %v", err)
	}
}

func TestIsPermission(t *testing.T) {
	for _, p := range allTen {
		if !IsPermission(p) {
			t.Errorf("IsPermission(%q) = false", p)
		}
	}
	for _, p := range []string{"", "can_write_messages", "CAN_ADD_USERS", "can_add_users ", "can_fly"} {
		if IsPermission(p) {
			t.Errorf("IsPermission(%q) = true", p)
		}
	}
}

func TestPermissionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		in      Permissions
		wantErr string
	}{
		{"nil", nil, ""},
		{"empty", Permissions{}, ""},
		{"all ten", allTen, ""},
		{"duplicates of a known one", Permissions{CanAddUsers, CanAddUsers}, ""},
		{"unknown", Permissions{"can_fly"}, `"can_fly"`},
		{"seed's name", Permissions{CanAddUsers, "can_write_messages"}, `"can_write_messages"`},
		{"empty string", Permissions{""}, `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want an error containing %s", err, tt.wantErr)
			}
		})
	}
}

func TestPermissionsSetOps(t *testing.T) {
	tests := []struct {
		name          string
		a, b          Permissions
		wantMissing   Permissions // a.Missing(b)
		wantIntersect Permissions // a.Intersect(b)
	}{
		{"both empty", nil, nil, nil, Permissions{}},
		{"a empty", nil, Permissions{CanAddUsers}, Permissions{CanAddUsers}, Permissions{}},
		{"b empty", Permissions{CanAddUsers}, nil, nil, Permissions{}},
		{"subset (intersection in a's order)", allTen, groupMember, nil, Permissions{CanAddUsers, CanCreateMessages, CanDeleteOwnMessages, CanEditOwnMessages}},
		{"superset", channelSub, groupMember, Permissions{CanCreateMessages, CanEditOwnMessages, CanDeleteOwnMessages}, Permissions{CanAddUsers}},
		{"disjoint", Permissions{CanEditRoom}, Permissions{CanDeleteRoom, CanRemoveUsers}, Permissions{CanDeleteRoom, CanRemoveUsers}, Permissions{}},
		{"duplicates collapse", Permissions{CanAddUsers, CanAddUsers}, Permissions{CanEditRoom, CanEditRoom, CanAddUsers}, Permissions{CanEditRoom}, Permissions{CanAddUsers}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Missing(tt.b); !slices.Equal(got, tt.wantMissing) {
				t.Errorf("Missing = %v, want %v", got, tt.wantMissing)
			}
			if got := tt.a.Intersect(tt.b); !slices.Equal(got, tt.wantIntersect) {
				t.Errorf("Intersect = %v, want %v", got, tt.wantIntersect)
			}
			for _, p := range tt.a {
				if !tt.a.Has(p) {
					t.Errorf("Has(%q) = false on %v", p, tt.a)
				}
			}
		})
	}
	if (Permissions{CanAddUsers}).Has(CanRemoveUsers) || Permissions(nil).Has(CanAddUsers) {
		t.Error("Has reports a permission the set lacks")
	}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name          string
		before, after Permissions
		added         Permissions
		removed       Permissions
	}{
		{"no change", groupMember, groupMember, nil, nil},
		{"reordered is no change", Permissions{CanAddUsers, CanEditRoom}, Permissions{CanEditRoom, CanAddUsers}, nil, nil},
		{"add one", channelSub, Permissions{CanAddUsers, CanCreateMessages}, Permissions{CanCreateMessages}, nil},
		{"remove one", Permissions{CanAddUsers, CanCreateMessages}, channelSub, nil, Permissions{CanCreateMessages}},
		{"swap", Permissions{CanEditRoom}, Permissions{CanDeleteRoom}, Permissions{CanDeleteRoom}, Permissions{CanEditRoom}},
		{"from nothing", nil, channelSub, channelSub, nil},
		{"to nothing", channelSub, nil, nil, channelSub},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			added, removed := Diff(tt.before, tt.after)
			if !slices.Equal(added, tt.added) || !slices.Equal(removed, tt.removed) {
				t.Errorf("Diff = (+%v, -%v), want (+%v, -%v)", added, removed, tt.added, tt.removed)
			}
		})
	}
}

func TestPermissionDeniedError(t *testing.T) {
	if got := (&PermissionDenied{Permission: CanEditRoom}).Error(); !strings.Contains(got, CanEditRoom) {
		t.Errorf("default message %q does not name the permission", got)
	}
	if got := (&PermissionDenied{Permission: CanEditRoom, Reason: "custom reason"}).Error(); got != "custom reason" {
		t.Errorf("Error() = %q, want the Reason", got)
	}
}

func TestCheckGrant(t *testing.T) {
	tests := []struct {
		name      string
		actor     Permissions
		requested Permissions
		wantPerm  string // "" = allowed; otherwise the permission the refusal names
	}{
		{"creator grants everything", allTen, allTen, ""},
		{"creator grants nothing (explicit empty list)", allTen, noPerms, ""},
		{"creator grants nil", allTen, nil, ""},
		{"group member grants own subset", groupMember, Permissions{CanCreateMessages, CanEditOwnMessages}, ""},
		{"group member grants exactly own set", groupMember, groupMember, ""},
		{"channel subscriber invites with can_add_users", channelSub, channelSub, ""},
		{"channel subscriber invites with nothing", channelSub, noPerms, ""},
		{"no can_add_users", pmMember, noPerms, CanAddUsers},
		{"no permissions at all", noPerms, noPerms, CanAddUsers},
		{"nil actor", nil, nil, CanAddUsers},
		{"remover without can_add_users", remover, noPerms, CanAddUsers},
		{"cannot grant what actor lacks", groupMember, Permissions{CanCreateMessages, CanDeleteMessages}, CanDeleteMessages},
		{"channel subscriber cannot grant posting", channelSub, Permissions{CanCreateMessages}, CanCreateMessages},
		{"first missing one is named", groupMember, Permissions{CanEditRoom, CanDeleteRoom}, CanEditRoom},
		{"unknown permission cannot be granted", allTen, Permissions{"can_fly"}, "can_fly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDenied(t, CheckGrant(tt.actor, tt.requested), tt.wantPerm)
		})
	}
}

func TestCheckPermissionChange(t *testing.T) {
	tests := []struct {
		name          string
		actor         Permissions
		before, after Permissions
		wantPerm      string
	}{
		// granted
		{"creator promotes member to all ten", allTen, groupMember, allTen, ""},
		{"creator demotes member to nothing", allTen, groupMember, noPerms, ""},
		{"creator demotes another creator", allTen, allTen, channelSub, ""},
		{"no-op by an equal", groupMember, groupMember, groupMember, ""},
		{"member adds a permission it holds", groupMember, channelSub, Permissions{CanAddUsers, CanCreateMessages}, ""},
		{"member removes a permission it holds", groupMember, Permissions{CanAddUsers, CanCreateMessages}, channelSub, ""},
		{"moderator swaps within its set", moderator, Permissions{CanDeleteMessages}, Permissions{CanEditMessages}, ""},
		{"target with nothing gains actor's perm", channelSub, noPerms, channelSub, ""},
		{"reorder only", groupMember, Permissions{CanAddUsers, CanCreateMessages}, Permissions{CanCreateMessages, CanAddUsers}, ""},

		// refused: needs can_add_users
		{"no can_add_users", Permissions{CanEditRoom, CanDeleteRoom}, noPerms, Permissions{CanEditRoom}, CanAddUsers},
		{"no can_add_users even for a no-op", pmMember, pmMember, pmMember, CanAddUsers},
		{"nil actor", nil, nil, nil, CanAddUsers},
		// refused: adding what actor lacks
		{"add a permission actor lacks", groupMember, channelSub, Permissions{CanAddUsers, CanEditRoom}, CanEditRoom},
		{"add an unknown permission", allTen, channelSub, Permissions{CanAddUsers, "can_fly"}, "can_fly"},
		{"subscriber grants posting", channelSub, channelSub, Permissions{CanAddUsers, CanCreateMessages}, CanCreateMessages},
		// refused: removing what actor lacks
		{"remove a permission actor lacks", channelSub, Permissions{CanAddUsers, CanCreateMessages}, channelSub, CanCreateMessages},
		// refused: nobody demotes someone above them
		{"member demotes creator", groupMember, allTen, groupMember, CanRemoveUsers},
		{"member strips creator of a shared perm", groupMember, allTen, allTen[1:], CanRemoveUsers},
		{"member touches only shared perm of superior", groupMember, Permissions{CanAddUsers, CanEditRoom}, Permissions{CanEditRoom}, CanEditRoom},
		{"member adds shared perm to superior", groupMember, Permissions{CanEditRoom}, Permissions{CanEditRoom, CanCreateMessages}, CanEditRoom},
		{"moderator demotes creator", moderator, allTen, moderator, CanDeleteOwnMessages},
		{"subscriber demotes group member", channelSub, groupMember, channelSub, CanCreateMessages},
		{"no-op on a superior", groupMember, allTen, allTen, CanRemoveUsers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDenied(t, CheckPermissionChange(tt.actor, tt.before, tt.after), tt.wantPerm)
		})
	}
}

func TestCheckOwnPermissionChange(t *testing.T) {
	tests := []struct {
		name          string
		before, after Permissions
		wantPerm      string
	}{
		{"no change", groupMember, groupMember, ""},
		{"drop one", groupMember, Permissions{CanAddUsers, CanCreateMessages, CanEditOwnMessages}, ""},
		{"drop all", allTen, noPerms, ""},
		{"drop all to nil", allTen, nil, ""},
		{"reorder", Permissions{CanAddUsers, CanEditRoom}, Permissions{CanEditRoom, CanAddUsers}, ""},
		{"nothing to nothing", nil, noPerms, ""},
		{"add one", groupMember, append(slices.Clone(groupMember), CanEditRoom), CanEditRoom},
		{"add from nothing", noPerms, Permissions{CanCreateMessages}, CanCreateMessages},
		{"swap is an add", Permissions{CanEditRoom}, Permissions{CanDeleteRoom}, CanDeleteRoom},
		{"drop one add another", groupMember, Permissions{CanAddUsers, CanCreateMessages, CanEditOwnMessages, CanDeleteMessages}, CanDeleteMessages},
		{"add unknown", channelSub, Permissions{CanAddUsers, "can_fly"}, "can_fly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDenied(t, CheckOwnPermissionChange(tt.before, tt.after), tt.wantPerm)
		})
	}
}

func TestCheckRemoval(t *testing.T) {
	tests := []struct {
		name     string
		actor    Permissions
		target   Permissions
		wantPerm string
	}{
		{"creator removes member", allTen, groupMember, ""},
		{"creator removes another creator", allTen, allTen, ""},
		{"creator removes subscriber", allTen, channelSub, ""},
		{"remover removes member with nothing", remover, noPerms, ""},
		{"remover removes member with nil", remover, nil, ""},
		{"remover removes an equal", removerAdder, removerAdder, ""},
		{"remover removes a lesser", removerAdder, Permissions{CanCreateMessages}, ""},
		{"no can_remove_users", groupMember, noPerms, CanRemoveUsers},
		{"channel subscriber", channelSub, channelSub, CanRemoveUsers},
		{"nil actor", nil, nil, CanRemoveUsers},
		{"target above actor", removerAdder, allTen, CanDeleteMessages},
		{"target holds one thing actor lacks", remover, Permissions{CanAddUsers}, CanAddUsers},
		{"moderator removes creator", moderator, allTen, CanDeleteOwnMessages},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDenied(t, CheckRemoval(tt.actor, tt.target), tt.wantPerm)
		})
	}
}

func TestCheckMessageAction(t *testing.T) {
	tests := []struct {
		name     string
		actor    Permissions
		action   MessageAction
		own      bool
		wantPerm string
	}{
		// edit
		{"edit own with can_edit_own_messages", Permissions{CanEditOwnMessages}, EditMessage, true, ""},
		{"edit own with can_edit_messages", Permissions{CanEditMessages}, EditMessage, true, ""},
		{"edit other's with can_edit_messages", Permissions{CanEditMessages}, EditMessage, false, ""},
		{"edit other's with only can_edit_own_messages", Permissions{CanEditOwnMessages}, EditMessage, false, CanEditMessages},
		{"edit own with nothing", noPerms, EditMessage, true, CanEditOwnMessages},
		{"edit other's with nothing", noPerms, EditMessage, false, CanEditMessages},
		{"edit own with delete perms only", Permissions{CanDeleteMessages, CanDeleteOwnMessages}, EditMessage, true, CanEditOwnMessages},
		{"edit other's with delete perms only", Permissions{CanDeleteMessages, CanDeleteOwnMessages}, EditMessage, false, CanEditMessages},
		{"group member edits own", groupMember, EditMessage, true, ""},
		{"group member edits other's", groupMember, EditMessage, false, CanEditMessages},
		{"creator edits other's", allTen, EditMessage, false, ""},
		// delete
		{"delete own with can_delete_own_messages", Permissions{CanDeleteOwnMessages}, DeleteMessage, true, ""},
		{"delete own with can_delete_messages", Permissions{CanDeleteMessages}, DeleteMessage, true, ""},
		{"delete other's with can_delete_messages", Permissions{CanDeleteMessages}, DeleteMessage, false, ""},
		{"delete other's with only can_delete_own_messages", Permissions{CanDeleteOwnMessages}, DeleteMessage, false, CanDeleteMessages},
		{"delete own with nothing", nil, DeleteMessage, true, CanDeleteOwnMessages},
		{"delete other's with nothing", nil, DeleteMessage, false, CanDeleteMessages},
		{"delete own with edit perms only", Permissions{CanEditMessages, CanEditOwnMessages}, DeleteMessage, true, CanDeleteOwnMessages},
		{"delete other's with edit perms only", Permissions{CanEditMessages, CanEditOwnMessages}, DeleteMessage, false, CanDeleteMessages},
		{"channel subscriber deletes own", channelSub, DeleteMessage, true, CanDeleteOwnMessages},
		{"pm member deletes other's", pmMember, DeleteMessage, false, CanDeleteMessages},
		{"moderator deletes other's", moderator, DeleteMessage, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckMessageAction(tt.actor, tt.action, tt.own)
			checkDenied(t, err, tt.wantPerm)
			if err != nil && tt.own {
				// the refusal of one's own message names both ways to get it
				other := CanEditMessages
				if tt.action == DeleteMessage {
					other = CanDeleteMessages
				}
				if !strings.Contains(err.Error(), other) {
					t.Errorf("error %q does not mention %s", err, other)
				}
			}
		})
	}
}
