package chat

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Moderation: bans, silence, slow mode and reports. The names below are
// what a refusal names (403 "banned" / "silenced", 429 "slow_mode").
const (
	Banned   = "banned"
	Silenced = "silenced"
	SlowMode = "slow_mode"

	// MaxSlowModeSeconds is the longest slow mode a room may have (a day).
	MaxSlowModeSeconds = 86400
	// MaxReportReason is the longest report reason, in characters.
	MaxReportReason = 1000
)

// CheckBan decides whether an actor may ban a user holding target in the
// room (target is nil for a user who is not a member): it needs
// can_remove_users and every permission the target holds ("not above me").
// Nobody bans themselves.
func CheckBan(actor, target Permissions, self bool) error {
	if self {
		return &PermissionDenied{Permission: CanRemoveUsers, Reason: "you cannot ban yourself (can_remove_users applies to others)"}
	}
	return checkHolds(actor, CanRemoveUsers, target, "you cannot ban a member holding %s: you do not hold it")
}

// CheckSilence decides whether an actor may silence (or unsilence) a member
// holding target: as for a ban, can_remove_users and every permission the
// target holds. Nobody silences or unsilences themselves.
func CheckSilence(actor, target Permissions, self bool) error {
	if self {
		return &PermissionDenied{Permission: CanRemoveUsers, Reason: "you cannot silence or unsilence yourself (can_remove_users applies to others)"}
	}
	return checkHolds(actor, CanRemoveUsers, target, "you cannot silence a member holding %s: you do not hold it")
}

// BanActive reports whether a ban lasting until (zero: forever) applies at now.
func BanActive(until, now time.Time) bool {
	return until.IsZero() || until.After(now)
}

// SilencedAt reports whether a member silenced until (zero: not silenced)
// is silenced at now.
func SilencedAt(until, now time.Time) bool {
	return !until.IsZero() && until.After(now)
}

// ValidateBanUntil refuses a new ban that would already be over.
func ValidateBanUntil(until, now time.Time) error {
	if !until.IsZero() && !until.After(now) {
		return errors.New("until must be in the future (or empty for a ban without end)")
	}
	return nil
}

// ValidateSlowMode checks a room's slow_mode_seconds (0 turns it off).
func ValidateSlowMode(seconds float64) error {
	if seconds < 0 || seconds > MaxSlowModeSeconds || seconds != float64(int(seconds)) {
		return fmt.Errorf("slow_mode_seconds must be a whole number from 0 (off) to %d", MaxSlowModeSeconds)
	}
	return nil
}

// SlowModeWait is how long a member whose last message in the room was
// written at last (zero: never) must still wait at now in a room with a slow
// mode of seconds (0: off). Zero means they may post.
func SlowModeWait(seconds int, last, now time.Time) time.Duration {
	if seconds <= 0 || last.IsZero() {
		return 0
	}
	wait := last.Add(time.Duration(seconds) * time.Second).Sub(now)
	if wait < 0 {
		return 0
	}
	return wait
}

// RetryAfterSeconds is a wait as a Retry-After value: whole seconds, rounded
// up, at least 1.
func RetryAfterSeconds(wait time.Duration) int {
	s := int((wait + time.Second - 1) / time.Second)
	if s < 1 {
		return 1
	}
	return s
}

// ValidateReportReason checks a report's reason: 1 to 1000 characters, not
// only spaces.
func ValidateReportReason(reason string) error {
	if strings.TrimSpace(reason) == "" {
		return errors.New("a report needs a reason")
	}
	if n := utf8.RuneCountInString(reason); n > MaxReportReason {
		return fmt.Errorf("the reason is %d characters long; at most %d are allowed", n, MaxReportReason)
	}
	return nil
}
