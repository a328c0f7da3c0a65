package chat

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWithDefaultsZeroValue(t *testing.T) {
	got, err := Settings{}.WithDefaults()
	if err != nil {
		t.Fatalf("WithDefaults() on zero Settings: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"UsersCollection", got.UsersCollection, "users"},
		{"MaxMessageLength", got.MaxMessageLength, 4000},
		{"MaxAttachments", got.MaxAttachments, 10},
		{"MaxMediaSize", got.MaxMediaSize, int64(20 * 1024 * 1024)},
		{"OrphanMediaTTL", got.OrphanMediaTTL, 24 * time.Hour},
		{"OrphanMediaCleanupSchedule", got.OrphanMediaCleanupSchedule, "*/10 * * * *"},
		{"Reactions.Mode", got.Reactions.Mode, ReactionsEmoji},
		{"Reactions.MaxLength", got.Reactions.MaxLength, 32},
		{"len(Reactions.Allowed)", len(got.Reactions.Allowed), 0},
		{"len(RoomDefaults)", len(got.RoomDefaults), 3},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// specDefaults is the Permissions table of SPEC.md, written out independently
// of specRoomDefaults.
var specDefaults = map[string]RoomDefaults{
	RoomPrivateMessages: {
		Creator: Permissions{"can_create_messages", "can_edit_own_messages", "can_delete_own_messages", "can_delete_room"},
		Member:  Permissions{"can_create_messages", "can_edit_own_messages", "can_delete_own_messages", "can_delete_room"},
	},
	RoomGroup: {
		Creator: Permissions{"can_add_users", "can_remove_users", "can_create_messages", "can_delete_messages",
			"can_delete_own_messages", "can_edit_messages", "can_edit_own_messages", "can_edit_room", "can_delete_room",
			"can_pin_messages"},
		Member: Permissions{"can_add_users", "can_create_messages", "can_edit_own_messages", "can_delete_own_messages"},
	},
	RoomChannel: {
		Creator: Permissions{"can_add_users", "can_remove_users", "can_create_messages", "can_delete_messages",
			"can_delete_own_messages", "can_edit_messages", "can_edit_own_messages", "can_edit_room", "can_delete_room",
			"can_pin_messages"},
		Member: Permissions{"can_add_users"},
	},
}

// sameSet reports whether a and b hold the same permissions, ignoring order.
func sameSet(a, b Permissions) bool {
	return len(a.Missing(b)) == 0 && len(b.Missing(a)) == 0
}

func TestWithDefaultsSpecRoomDefaults(t *testing.T) {
	s, err := Settings{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, roomType := range RoomTypes {
		t.Run(roomType, func(t *testing.T) {
			want := specDefaults[roomType]
			got := s.DefaultsFor(roomType)
			if !sameSet(got.Creator, want.Creator) || len(got.Creator) != len(want.Creator) {
				t.Errorf("Creator = %v, want %v", got.Creator, want.Creator)
			}
			if !sameSet(got.Member, want.Member) || len(got.Member) != len(want.Member) {
				t.Errorf("Member = %v, want %v", got.Member, want.Member)
			}
		})
	}
}

func TestWithDefaultsKeepsSetValues(t *testing.T) {
	in := Settings{
		UsersCollection:            "members",
		MaxMessageLength:           10,
		MaxAttachments:             1,
		MaxMediaSize:               1024,
		OrphanMediaTTL:             time.Minute,
		OrphanMediaCleanupSchedule: "@hourly",
		Reactions:                  ReactionRules{Mode: ReactionsCustom, MaxLength: 5},
	}
	got, err := in.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got.UsersCollection != "members" || got.MaxMessageLength != 10 || got.MaxAttachments != 1 ||
		got.MaxMediaSize != 1024 || got.OrphanMediaTTL != time.Minute || got.OrphanMediaCleanupSchedule != "@hourly" ||
		got.Reactions.Mode != ReactionsCustom || got.Reactions.MaxLength != 5 {
		t.Errorf("WithDefaults changed a set value: %+v", got)
	}
}

func TestWithDefaultsRoomOverrides(t *testing.T) {
	custom := Permissions{CanCreateMessages}
	tests := []struct {
		name        string
		override    map[string]RoomDefaults
		roomType    string
		wantCreator Permissions
		wantMember  Permissions
	}{
		{
			name:        "creator only keeps member default",
			override:    map[string]RoomDefaults{RoomGroup: {Creator: custom}},
			roomType:    RoomGroup,
			wantCreator: custom,
			wantMember:  specDefaults[RoomGroup].Member,
		},
		{
			name:        "member only keeps creator default",
			override:    map[string]RoomDefaults{RoomChannel: {Member: custom}},
			roomType:    RoomChannel,
			wantCreator: specDefaults[RoomChannel].Creator,
			wantMember:  custom,
		},
		{
			name:        "both halves",
			override:    map[string]RoomDefaults{RoomPrivateMessages: {Creator: custom, Member: Permissions{CanDeleteRoom}}},
			roomType:    RoomPrivateMessages,
			wantCreator: custom,
			wantMember:  Permissions{CanDeleteRoom},
		},
		{
			name:        "explicit empty member means none",
			override:    map[string]RoomDefaults{RoomChannel: {Member: Permissions{}}},
			roomType:    RoomChannel,
			wantCreator: specDefaults[RoomChannel].Creator,
			wantMember:  Permissions{},
		},
		{
			name:        "empty entry keeps both halves",
			override:    map[string]RoomDefaults{RoomGroup: {}},
			roomType:    RoomGroup,
			wantCreator: specDefaults[RoomGroup].Creator,
			wantMember:  specDefaults[RoomGroup].Member,
		},
		{
			name:        "other room type untouched",
			override:    map[string]RoomDefaults{RoomGroup: {Creator: custom, Member: custom}},
			roomType:    RoomChannel,
			wantCreator: specDefaults[RoomChannel].Creator,
			wantMember:  specDefaults[RoomChannel].Member,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Settings{RoomDefaults: tt.override}.WithDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if len(s.RoomDefaults) != len(RoomTypes) {
				t.Errorf("RoomDefaults has %d entries, want %d", len(s.RoomDefaults), len(RoomTypes))
			}
			got := s.DefaultsFor(tt.roomType)
			if !sameSet(got.Creator, tt.wantCreator) || len(got.Creator) != len(tt.wantCreator) {
				t.Errorf("Creator = %v, want %v", got.Creator, tt.wantCreator)
			}
			if !sameSet(got.Member, tt.wantMember) || len(got.Member) != len(tt.wantMember) {
				t.Errorf("Member = %v, want %v", got.Member, tt.wantMember)
			}
		})
	}
}

func TestWithDefaultsErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      Settings
		wantErr string
	}{
		{"unknown room type", Settings{RoomDefaults: map[string]RoomDefaults{"forum": {Member: Permissions{CanAddUsers}}}}, `unknown room type "forum"`},
		{"room type is case sensitive", Settings{RoomDefaults: map[string]RoomDefaults{"Group": {}}}, `unknown room type "Group"`},
		{"unknown creator permission", Settings{RoomDefaults: map[string]RoomDefaults{RoomGroup: {Creator: Permissions{"can_fly"}}}}, `Creator: unknown permission "can_fly"`},
		{"unknown member permission", Settings{RoomDefaults: map[string]RoomDefaults{RoomChannel: {Member: Permissions{CanAddUsers, "can_write_messages"}}}}, `Member: unknown permission "can_write_messages"`},
		{"empty permission", Settings{RoomDefaults: map[string]RoomDefaults{RoomPrivateMessages: {Member: Permissions{""}}}}, `unknown permission ""`},
		{"negative MaxMessageLength", Settings{MaxMessageLength: -1}, "negative"},
		{"negative MaxAttachments", Settings{MaxAttachments: -1}, "negative"},
		{"negative MaxMediaSize", Settings{MaxMediaSize: -1}, "negative"},
		{"negative OrphanMediaTTL", Settings{OrphanMediaTTL: -time.Second}, "negative"},
		{"negative reaction MaxLength", Settings{Reactions: ReactionRules{Mode: ReactionsCustom, MaxLength: -1}}, "MaxLength"},
		{"unknown reaction mode", Settings{Reactions: ReactionRules{Mode: "stars"}}, `unknown mode "stars"`},
		{"empty allowed value", Settings{Reactions: ReactionRules{Allowed: []string{"👍", ""}}}, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.in.WithDefaults()
			if err == nil {
				t.Fatalf("WithDefaults() = nil error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("WithDefaults() error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestWithDefaultsDoesNotMutateInput(t *testing.T) {
	override := map[string]RoomDefaults{RoomGroup: {Member: Permissions{CanCreateMessages}}}
	in := Settings{RoomDefaults: override}
	if _, err := in.WithDefaults(); err != nil {
		t.Fatal(err)
	}
	if len(override) != 1 || override[RoomGroup].Creator != nil || in.UsersCollection != "" || in.MaxMessageLength != 0 {
		t.Errorf("WithDefaults mutated its receiver: %+v", in)
	}
}

// The result of WithDefaults must not share storage with the package's own
// defaults: a caller sorting or editing its permission slices in place must
// not change what the next WithDefaults call (or AllPermissions) returns.
func TestWithDefaultsResultIsIndependent(t *testing.T) {
	want := slices.Clone(AllPermissions)
	first, err := Settings{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, rd := range first.RoomDefaults {
		slices.Sort(rd.Creator)
		for i := range rd.Member {
			rd.Member[i] = "mutated"
		}
	}
	if !slices.Equal(AllPermissions, want) {
		t.Fatalf("AllPermissions changed to %v", AllPermissions)
	}
	second, err := Settings{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, roomType := range RoomTypes {
		if got := second.DefaultsFor(roomType).Member; !sameSet(got, specDefaults[roomType].Member) {
			t.Errorf("%s Member after mutation of an earlier result = %v", roomType, got)
		}
	}
}
