package chat

import (
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// ReactionMode names how reaction values are constrained.
type ReactionMode string

const (
	// ReactionsEmoji accepts exactly one emoji (the default).
	ReactionsEmoji ReactionMode = "emoji"
	// ReactionsLikeDislike accepts "like" or "dislike", one of them per user and message.
	ReactionsLikeDislike ReactionMode = "like_dislike"
	// ReactionsCustom accepts any text of 1 to MaxLength characters.
	ReactionsCustom ReactionMode = "custom"
)

// The two values of like_dislike mode.
const (
	ReactionLike    = "like"
	ReactionDislike = "dislike"
)

// ReactionRules constrains chat_message_reactions.reaction.
type ReactionRules struct {
	// Mode is emoji (default), like_dislike or custom.
	Mode ReactionMode
	// Allowed, when non-empty, is the exact list of accepted values and wins over Mode.
	Allowed []string
	// MaxLength is the longest custom reaction in characters. Default 32.
	MaxLength int
}

func (r ReactionRules) withDefaults() (ReactionRules, error) {
	if r.Mode == "" {
		r.Mode = ReactionsEmoji
	}
	switch r.Mode {
	case ReactionsEmoji, ReactionsLikeDislike, ReactionsCustom:
	default:
		return r, fmt.Errorf("unknown mode %q", r.Mode)
	}
	if r.MaxLength == 0 {
		r.MaxLength = DefaultCustomReactionLen
	}
	if r.MaxLength < 0 {
		return r, errors.New("MaxLength must not be negative")
	}
	for _, v := range r.Allowed {
		if v == "" {
			return r, errors.New("Allowed must not hold an empty value")
		}
	}
	return r, nil
}

// Exclusive reports whether a user holds at most one reaction per message,
// a new one replacing the old (like_dislike mode without an explicit list).
func (r ReactionRules) Exclusive() bool {
	return len(r.Allowed) == 0 && r.Mode == ReactionsLikeDislike
}

// Validate fails with a user-facing reason when value is not an accepted reaction.
func (r ReactionRules) Validate(value string) error {
	if value == "" {
		return errors.New("reaction must not be empty")
	}
	if len(r.Allowed) > 0 {
		if !slices.Contains(r.Allowed, value) {
			return fmt.Errorf("reaction must be one of %v", r.Allowed)
		}
		return nil
	}
	switch r.Mode {
	case ReactionsLikeDislike:
		if value != ReactionLike && value != ReactionDislike {
			return errors.New(`reaction must be "like" or "dislike"`)
		}
	case ReactionsCustom:
		if !utf8.ValidString(value) {
			return errors.New("reaction must be valid UTF-8 text")
		}
		maxLength := r.MaxLength
		if maxLength == 0 {
			maxLength = DefaultCustomReactionLen
		}
		if n := utf8.RuneCountInString(value); n > maxLength {
			return fmt.Errorf("reaction must be at most %d characters", maxLength)
		}
	default:
		if !IsSingleEmoji(value) {
			return errors.New("reaction must be exactly one emoji")
		}
	}
	return nil
}

// IsSingleEmoji reports whether s is one extended grapheme cluster that is an
// emoji: a pictographic character with optional variation selector, skin tone
// and ZWJ continuation, a flag (two regional indicators), or a keycap.
func IsSingleEmoji(s string) bool {
	if s == "" || !utf8.ValidString(s) || uniseg.GraphemeClusterCount(s) != 1 {
		return false
	}
	runes := []rune(s)
	first := runes[0]
	switch {
	case isRegionalIndicator(first):
		return len(runes) == 2 && isRegionalIndicator(runes[1])
	case isKeycapBase(first):
		// "1️⃣": base, optional VS16, combining enclosing keycap.
		return runes[len(runes)-1] == 0x20E3 && (len(runes) == 2 || (len(runes) == 3 && runes[1] == 0xFE0F))
	case isPictographic(first):
		for _, r := range runes[1:] {
			if !isPictographic(r) && !isEmojiComponent(r) {
				return false
			}
		}
		return true
	}
	return false
}

func isRegionalIndicator(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

func isKeycapBase(r rune) bool { return r == '#' || r == '*' || (r >= '0' && r <= '9') }

// isEmojiComponent: ZWJ, variation selectors, skin tones, tag characters (subdivision flags).
func isEmojiComponent(r rune) bool {
	return r == 0x200D || r == 0xFE0F || r == 0xFE0E || r == 0x20E3 ||
		(r >= 0x1F3FB && r <= 0x1F3FF) || (r >= 0xE0020 && r <= 0xE007F) ||
		(r >= 0x1F9B0 && r <= 0x1F9B3) // hair components
}

// pictographicRanges approximates Unicode's Extended_Pictographic property.
var pictographicRanges = [][2]rune{
	{0x00A9, 0x00A9}, {0x00AE, 0x00AE}, {0x203C, 0x203C}, {0x2049, 0x2049},
	{0x2122, 0x2122}, {0x2139, 0x2139}, {0x2194, 0x2199}, {0x21A9, 0x21AA},
	{0x231A, 0x231B}, {0x2328, 0x2328}, {0x2388, 0x2388}, {0x23CF, 0x23CF},
	{0x23E9, 0x23F3}, {0x23F8, 0x23FA}, {0x24C2, 0x24C2}, {0x25AA, 0x25AB},
	{0x25B6, 0x25B6}, {0x25C0, 0x25C0}, {0x25FB, 0x25FE}, {0x2600, 0x27BF},
	{0x2934, 0x2935}, {0x2B05, 0x2B07}, {0x2B1B, 0x2B1C}, {0x2B50, 0x2B50},
	{0x2B55, 0x2B55}, {0x3030, 0x3030}, {0x303D, 0x303D}, {0x3297, 0x3297},
	{0x3299, 0x3299}, {0x1F000, 0x1F1E5}, {0x1F200, 0x1F3FA}, {0x1F400, 0x1FAFF},
	{0x1FC00, 0x1FFFD},
}

func isPictographic(r rune) bool {
	for _, rg := range pictographicRanges {
		if r >= rg[0] && r <= rg[1] {
			return true
		}
	}
	return false
}
