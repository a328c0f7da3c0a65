package chat

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckBanAndSilence(t *testing.T) {
	moderator := Permissions{CanAddUsers, CanRemoveUsers, CanCreateMessages}
	cases := []struct {
		name          string
		actor, target Permissions
		self          bool
		denied        string // the permission named, "" when allowed
	}{
		{"moderator, plain member", moderator, Permissions{CanCreateMessages}, false, ""},
		{"moderator, non-member", moderator, nil, false, ""},
		{"moderator, equal", moderator, moderator, false, ""},
		{"without can_remove_users", Permissions{CanAddUsers}, nil, false, CanRemoveUsers},
		{"target above: can_edit_room", moderator, Permissions{CanEditRoom}, false, CanEditRoom},
		{"target above: can_delete_messages", moderator, Permissions{CanRemoveUsers, CanDeleteMessages}, false, CanDeleteMessages},
		{"creator bans moderator", AllPermissions, moderator, false, ""},
		{"self", AllPermissions, AllPermissions, true, CanRemoveUsers},
	}
	for _, tc := range cases {
		for name, check := range map[string]func(Permissions, Permissions, bool) error{"ban": CheckBan, "silence": CheckSilence} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				err := check(tc.actor, tc.target, tc.self)
				if tc.denied == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				var denied *PermissionDenied
				if !errors.As(err, &denied) || denied.Permission != tc.denied {
					t.Fatalf("err = %v, want a refusal naming %s", err, tc.denied)
				}
			})
		}
	}
}

func TestBanActiveAndSilenced(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name             string
		until            time.Time
		banned, silenced bool
	}{
		{"no end", time.Time{}, true, false},
		{"future", now.Add(time.Minute), true, true},
		{"past", now.Add(-time.Minute), false, false},
		{"now", now, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := BanActive(tc.until, now); got != tc.banned {
				t.Errorf("BanActive = %v, want %v", got, tc.banned)
			}
			if got := SilencedAt(tc.until, now); got != tc.silenced {
				t.Errorf("SilencedAt = %v, want %v", got, tc.silenced)
			}
		})
	}
}

func TestValidateBanUntil(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		until time.Time
		ok    bool
	}{{time.Time{}, true}, {now.Add(time.Second), true}, {now, false}, {now.Add(-time.Hour), false}} {
		if err := ValidateBanUntil(tc.until, now); (err == nil) != tc.ok {
			t.Errorf("ValidateBanUntil(%v) = %v, want ok %v", tc.until, err, tc.ok)
		}
	}
}

func TestSlowMode(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		seconds int
		last    time.Time
		wait    time.Duration
		retry   int
	}{
		{"off", 0, now, 0, 0},
		{"never posted", 30, time.Time{}, 0, 0},
		{"just posted", 30, now, 30 * time.Second, 30},
		{"part way", 30, now.Add(-10*time.Second - 500*time.Millisecond), 19*time.Second + 500*time.Millisecond, 20},
		{"over", 30, now.Add(-31 * time.Second), 0, 0},
		{"exactly over", 30, now.Add(-30 * time.Second), 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wait := SlowModeWait(tc.seconds, tc.last, now)
			if wait != tc.wait {
				t.Fatalf("wait = %v, want %v", wait, tc.wait)
			}
			if wait > 0 && RetryAfterSeconds(wait) != tc.retry {
				t.Fatalf("Retry-After = %d, want %d", RetryAfterSeconds(wait), tc.retry)
			}
		})
	}
	if RetryAfterSeconds(time.Millisecond) != 1 || RetryAfterSeconds(0) != 1 {
		t.Fatal("Retry-After is at least 1")
	}
}

func TestValidateSlowMode(t *testing.T) {
	for _, tc := range []struct {
		v  float64
		ok bool
	}{{0, true}, {1, true}, {MaxSlowModeSeconds, true}, {-1, false}, {MaxSlowModeSeconds + 1, false}, {1.5, false}} {
		if err := ValidateSlowMode(tc.v); (err == nil) != tc.ok {
			t.Errorf("ValidateSlowMode(%v) = %v, want ok %v", tc.v, err, tc.ok)
		}
	}
}

func TestValidateReportReason(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		ok     bool
	}{
		{"short", "spam", true},
		{"empty", "", false},
		{"spaces", "   \n", false},
		{"1000 characters", strings.Repeat("é", MaxReportReason), true},
		{"1001 characters", strings.Repeat("a", MaxReportReason+1), false},
	} {
		if err := ValidateReportReason(tc.reason); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
