package chat

import "testing"

func TestMembershipKind(t *testing.T) {
	tests := []struct {
		name     string
		added    bool
		user, by string
		wantKind string
	}{
		{"user adds themself", true, "u", "u", SystemMemberJoined},
		{"another member adds the user", true, "u", "a", SystemMemberAdded},
		{"a superuser or Go adds the user", true, "u", "", SystemMemberAdded},
		{"user removes themself", false, "u", "u", SystemMemberLeft},
		{"another member removes the user", false, "u", "a", SystemMemberRemoved},
		{"a superuser or Go removes the user", false, "u", "", SystemMemberRemoved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MembershipKind(tt.added, tt.user, tt.by); got != tt.wantKind {
				t.Errorf("MembershipKind(%v, %q, %q) = %q, want %q", tt.added, tt.user, tt.by, got, tt.wantKind)
			}
		})
	}
}
