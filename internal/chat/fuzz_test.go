package chat

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// fuzzModes is what the mode byte of FuzzReactionValidate selects from:
// every mode, the zero value, and an unknown one.
var fuzzModes = []ReactionMode{"", ReactionsEmoji, ReactionsLikeDislike, ReactionsCustom, "bogus"}

// FuzzReactionValidate checks ReactionRules.Validate in every mode, with and
// without an explicit allowed list (newline-separated in allowed).
func FuzzReactionValidate(f *testing.F) {
	f.Add(uint8(0), "", 0, "👍")
	f.Add(uint8(1), "", 0, "👨‍👩‍👧")
	f.Add(uint8(1), "", 0, "👍👍")
	f.Add(uint8(2), "", 0, "like")
	f.Add(uint8(3), "", 5, "héllo")
	f.Add(uint8(3), "", 5, "héllo!")
	f.Add(uint8(1), "+1\n👍", 0, "+1")
	f.Add(uint8(4), "", -1, "x")
	f.Fuzz(func(t *testing.T, mode uint8, allowed string, maxLength int, value string) {
		raw := ReactionRules{Mode: fuzzModes[int(mode)%len(fuzzModes)], MaxLength: maxLength}
		if allowed != "" {
			raw.Allowed = strings.Split(allowed, "\n")
		}
		rawErr := raw.Validate(value) // never panics, even on rules WithDefaults would refuse
		r, err := raw.withDefaults()
		if err != nil {
			if raw.Mode != "bogus" && maxLength >= 0 && !slices.Contains(raw.Allowed, "") {
				t.Fatalf("withDefaults(%+v) = %v on valid rules", raw, err)
			}
			return
		}
		if raw.Mode == "bogus" || maxLength < 0 {
			t.Fatalf("withDefaults(%+v) accepted invalid rules", raw)
		}
		if maxLength == 0 && r.MaxLength != DefaultCustomReactionLen {
			t.Fatalf("MaxLength defaulted to %d", r.MaxLength)
		}
		verr := r.Validate(value)
		// defaulting must not change the verdict on rules that were valid
		if (verr == nil) != (rawErr == nil) {
			t.Fatalf("Validate(%q) = %v on defaulted rules but %v on raw rules %+v", value, verr, rawErr, raw)
		}
		if verr != nil && verr.Error() == "" {
			t.Fatal("refusal with an empty message")
		}
		if value == "" && verr == nil {
			t.Fatal("empty reaction accepted")
		}
		if got, want := r.Exclusive(), len(r.Allowed) == 0 && r.Mode == ReactionsLikeDislike; got != want {
			t.Fatalf("Exclusive() = %v, want %v for %+v", got, want, r)
		}

		if len(r.Allowed) > 0 {
			if want := slices.Contains(r.Allowed, value); (verr == nil) != want {
				t.Fatalf("allowed list %q: Validate(%q) = %v, want accepted=%v", r.Allowed, value, verr, want)
			}
			return
		}
		switch r.Mode {
		case ReactionsEmoji:
			if verr != nil {
				return
			}
			if !utf8.ValidString(value) {
				t.Fatalf("emoji mode accepted invalid UTF-8 %q", value)
			}
			if n := uniseg.GraphemeClusterCount(value); n != 1 {
				t.Fatalf("emoji mode accepted %q: %d grapheme clusters, want exactly 1", value, n)
			}
			for _, c := range value {
				if !isPictographic(c) && !isEmojiComponent(c) && !isRegionalIndicator(c) && !isKeycapBase(c) {
					t.Fatalf("emoji mode accepted %q holding non-emoji rune %U", value, c)
				}
			}
			if !IsSingleEmoji(value) {
				t.Fatalf("emoji mode accepted %q but IsSingleEmoji is false", value)
			}
		case ReactionsLikeDislike:
			if want := value == ReactionLike || value == ReactionDislike; (verr == nil) != want {
				t.Fatalf("like_dislike: Validate(%q) = %v, want accepted=%v", value, verr, want)
			}
		case ReactionsCustom:
			n := utf8.RuneCountInString(value)
			want := utf8.ValidString(value) && n >= 1 && n <= r.MaxLength
			if (verr == nil) != want {
				t.Fatalf("custom (MaxLength %d): Validate(%q) [%d runes] = %v, want accepted=%v", r.MaxLength, value, n, verr, want)
			}
		default:
			t.Fatalf("unexpected mode %q after defaults", r.Mode)
		}
	})
}

// permsFromMask builds a permission set from the low nine bits of mask (bit i
// = AllPermissions[i]); bit 9 duplicates an element, and rot rotates the
// order, since neither duplicates nor order may change a verdict.
func permsFromMask(mask uint16, rot uint8) Permissions {
	ps := Permissions{}
	for i, p := range AllPermissions {
		if mask&(1<<i) != 0 {
			ps = append(ps, p)
		}
	}
	if len(ps) > 0 {
		if mask&(1<<9) != 0 {
			ps = append(ps, ps[0])
		}
		k := int(rot) % len(ps)
		ps = append(ps[k:], ps[:k]...)
	}
	return ps
}

// subset reports whether every member of a is in b.
func subset(a, b Permissions) bool { return len(b.Missing(a)) == 0 }

// checkRefusal asserts that err names, as a *PermissionDenied, a permission
// that holder really lacks.
func checkRefusal(t *testing.T, what string, err error, holder Permissions) {
	t.Helper()
	var pd *PermissionDenied
	if !errors.As(err, &pd) {
		t.Fatalf("%s: error %v is %T, want *PermissionDenied", what, err, err)
	}
	if pd.Permission == "" || holder.Has(pd.Permission) {
		t.Fatalf("%s: refusal names %q, which %v does not lack", what, pd.Permission, holder)
	}
	if !strings.Contains(err.Error(), pd.Permission) {
		t.Fatalf("%s: message %q does not name %s", what, err, pd.Permission)
	}
}

// FuzzCheckPermissionChange checks CheckPermissionChange against the spec's
// rule stated as set logic, and the sibling checks on the same inputs.
// extra, when non-empty, is one more (possibly unknown) value added to the
// target's after set (odd rot) or before set (even rot).
func FuzzCheckPermissionChange(f *testing.F) {
	all := uint16(1<<9 - 1)
	f.Add(all, uint16(0b1001101), all, "", uint8(0))               // creator promotes member
	f.Add(uint16(0b1001101), all, uint16(0b1001101), "", uint8(1)) // member demotes creator
	f.Add(uint16(1), uint16(0), uint16(0b101), "", uint8(2))       // subscriber grants posting
	f.Add(all, uint16(1), uint16(1), "can_fly", uint8(3))          // unknown permission
	f.Add(uint16(0b1001101), uint16(0b1001101), uint16(0b1000101), "", uint8(4))
	f.Fuzz(func(t *testing.T, actorMask, beforeMask, afterMask uint16, extra string, rot uint8) {
		actor := permsFromMask(actorMask, rot)
		before := permsFromMask(beforeMask, rot/3)
		after := permsFromMask(afterMask, rot/7)
		if extra != "" {
			if rot%2 == 1 {
				after = append(after, extra)
			} else {
				before = append(before, extra)
			}
		}

		err := CheckPermissionChange(actor, before, after)
		want := actor.Has(CanAddUsers) && subset(before, actor) && subset(after, actor)
		if (err == nil) != want {
			t.Fatalf("CheckPermissionChange(actor %v, %v -> %v) = %v, want allowed=%v", actor, before, after, err, want)
		}
		added, removed := Diff(before, after)
		if err == nil {
			if !subset(added, actor) {
				t.Fatalf("allowed change adds %v, which actor %v lacks", actor.Missing(added), actor)
			}
			if !subset(removed, actor) {
				t.Fatalf("allowed change removes %v, which actor %v lacks", actor.Missing(removed), actor)
			}
			if !subset(before, actor) {
				t.Fatalf("allowed change to a target above the actor: %v", actor.Missing(before))
			}
		} else {
			checkRefusal(t, "CheckPermissionChange", err, actor)
		}

		// A member changing their own set: dropping only.
		err = CheckOwnPermissionChange(before, after)
		if (err == nil) != subset(after, before) {
			t.Fatalf("CheckOwnPermissionChange(%v -> %v) = %v, want allowed=%v", before, after, err, subset(after, before))
		}
		if err != nil {
			checkRefusal(t, "CheckOwnPermissionChange", err, before)
			var pd *PermissionDenied
			errors.As(err, &pd)
			if !after.Has(pd.Permission) {
				t.Fatalf("CheckOwnPermissionChange names %q, which is not being added", pd.Permission)
			}
		}

		// Adding a member with after as the requested permissions.
		err = CheckGrant(actor, after)
		if want := actor.Has(CanAddUsers) && subset(after, actor); (err == nil) != want {
			t.Fatalf("CheckGrant(%v, %v) = %v, want allowed=%v", actor, after, err, want)
		}
		if err != nil {
			checkRefusal(t, "CheckGrant", err, actor)
		}

		// Removing a member holding before.
		err = CheckRemoval(actor, before)
		if want := actor.Has(CanRemoveUsers) && subset(before, actor); (err == nil) != want {
			t.Fatalf("CheckRemoval(%v, %v) = %v, want allowed=%v", actor, before, err, want)
		}
		if err != nil {
			checkRefusal(t, "CheckRemoval", err, actor)
		}

		// Editing/deleting a message.
		own := rot%2 == 0
		for _, action := range []MessageAction{EditMessage, DeleteMessage} {
			anyPerm, ownPerm := CanEditMessages, CanEditOwnMessages
			if action == DeleteMessage {
				anyPerm, ownPerm = CanDeleteMessages, CanDeleteOwnMessages
			}
			err = CheckMessageAction(actor, action, own)
			if want := actor.Has(anyPerm) || (own && actor.Has(ownPerm)); (err == nil) != want {
				t.Fatalf("CheckMessageAction(%v, %d, own=%v) = %v, want allowed=%v", actor, action, own, err, want)
			}
			if err != nil {
				checkRefusal(t, "CheckMessageAction", err, actor)
			}
		}
	})
}

// FuzzValidateMessageText checks ValidateMessageText against the rule stated
// directly: valid UTF-8, at most maxLength runes, and visible text (a
// character that is not whitespace, control, format, variation selector,
// default-ignorable or a blank glyph) or at least one attachment.
func FuzzValidateMessageText(f *testing.F) {
	f.Add("hello", uint8(0), 4000)
	f.Add("", uint8(0), 4000)
	f.Add(" \t\n", uint8(0), 4000)
	f.Add("", uint8(1), 4000)
	f.Add("日本語", uint8(0), 3)
	f.Add("日本語!", uint8(0), 3)
	f.Add("\xff", uint8(2), 10)
	f.Add("\u200b", uint8(0), 4000)
	f.Add("\x00", uint8(0), 4000)
	f.Add("\u200c\u200d\u2060\ufeff", uint8(0), 4000)
	f.Add("\u2764\ufe0f", uint8(0), 4000)
	f.Add("\u3164\u2800", uint8(0), 4000)
	seen := func(r rune) bool {
		if unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) {
			return false
		}
		return r != '\u2800' && r != '\U0001D159' && (unicode.IsGraphic(r) || unicode.Is(unicode.Co, r))
	}
	f.Fuzz(func(t *testing.T, text string, attachments uint8, maxLength int) {
		err := ValidateMessageText(text, int(attachments), maxLength)
		n := utf8.RuneCountInString(text)
		visible := strings.IndexFunc(text, seen) >= 0
		want := utf8.ValidString(text) && n <= maxLength && (attachments > 0 || visible)
		if (err == nil) != want {
			t.Fatalf("ValidateMessageText(%q [%d runes], %d, %d) = %v, want accepted=%v", text, n, attachments, maxLength, err, want)
		}
		if attachments == 0 && strings.TrimSpace(text) == "" && err == nil {
			t.Fatalf("blank text %q accepted without attachments", text)
		}
		if err == nil && maxLength < int(^uint(0)>>1) {
			// a longer limit never refuses what a shorter one accepts
			if err := ValidateMessageText(text, int(attachments), maxLength+1); err != nil {
				t.Fatalf("accepted at limit %d but refused at %d: %v", maxLength, maxLength+1, err)
			}
			// invisible characters around the text change nothing (given room for them)
			if maxLength < int(^uint(0)>>1)-3 {
				padded := "\u200b" + text + "\x00\ufeff"
				if err := ValidateMessageText(padded, int(attachments), maxLength+3); err != nil {
					t.Fatalf("accepted %q but refused it padded with invisibles: %v", text, err)
				}
			}
		}
		if utf8.ValidString(text) && HasVisibleText(text) != HasVisibleText("\u200d"+text+"\u2060") {
			t.Fatalf("HasVisibleText(%q) changes with invisible padding", text)
		}
		const maxAttachments = 10
		if err := ValidateAttachmentCount(int(attachments), maxAttachments); (err == nil) != (attachments <= maxAttachments) {
			t.Fatalf("ValidateAttachmentCount(%d, %d) = %v", attachments, maxAttachments, err)
		}
	})
}
