package chat

import (
	"strings"
	"testing"
)

// defaulted runs r through the same defaulting Settings.WithDefaults applies.
func defaulted(t *testing.T, r ReactionRules) ReactionRules {
	t.Helper()
	s, err := Settings{Reactions: r}.WithDefaults()
	if err != nil {
		t.Fatalf("WithDefaults(Reactions: %+v): %v", r, err)
	}
	return s.Reactions
}

type reactionCase struct {
	name  string
	value string
	ok    bool
}

func runReactionCases(t *testing.T, r ReactionRules, cases []reactionCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Validate(tc.value)
			if tc.ok && err != nil {
				t.Errorf("Validate(%q) = %v, want nil", tc.value, err)
			}
			if !tc.ok && err == nil {
				t.Errorf("Validate(%q) = nil, want an error", tc.value)
			}
		})
	}
}

var emojiCases = []reactionCase{
	// accepted
	{"simple emoji", "😀", true},
	{"thumbs up", "👍", true},
	{"skin tone", "👍🏽", true},
	{"ZWJ family", "👨‍👩‍👧", true},
	{"ZWJ profession with skin tone", "👩🏽‍💻", true},
	{"hair component", "🧑‍🦰", true},
	{"flag", "🇫🇷", true},
	{"keycap with VS16", "1️⃣", true},
	{"keycap without VS16", "1⃣", true},
	{"hash keycap", "#️⃣", true},
	{"star keycap", "*️⃣", true},
	{"heart with VS16", "❤️", true},
	{"heart without VS16", "❤", true},
	{"coffee", "☕", true},
	{"star", "⭐", true},
	{"rainbow flag", "🏳️‍🌈", true},
	{"subdivision flag", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", true},
	// refused
	{"latin letter", "a", false},
	{"two emoji", "👍👍", false},
	{"empty", "", false},
	{"word", "like", false},
	{"emoji then letter", "👍a", false},
	{"letter then emoji", "a👍", false},
	{"digit alone", "1", false},
	{"digit with VS16 but no keycap", "1️", false},
	{"letter keycap", "a⃣", false},
	{"lone regional indicator", "🇫", false},
	{"three regional indicators", "🇫🇷🇫", false},
	{"two flags", "🇫🇷🇩🇪", false},
	{"leading space", " 👍", false},
	{"trailing space", "👍 ", false},
	{"space", " ", false},
	{"ZWJ alone", "\u200d", false},
	{"VS16 alone", "\ufe0f", false},
	{"emoji with combining accent", "👍\u0301", false},
	{"accented letter", "é", false},
	{"CJK", "字", false},
	{"invalid UTF-8", "\xff", false},
	{"emoji then invalid byte", "👍\xff", false},
	{"truncated emoji", "\xf0\x9f\x91", false},
	{"text smiley", ":)", false},
}

func TestReactionValidateEmoji(t *testing.T) {
	t.Run("defaulted zero rules", func(t *testing.T) {
		runReactionCases(t, defaulted(t, ReactionRules{}), emojiCases)
	})
	t.Run("explicit emoji mode", func(t *testing.T) {
		runReactionCases(t, defaulted(t, ReactionRules{Mode: ReactionsEmoji}), emojiCases)
	})
	t.Run("raw zero rules", func(t *testing.T) {
		runReactionCases(t, ReactionRules{}, emojiCases)
	})
}

func TestIsSingleEmoji(t *testing.T) {
	for _, tc := range emojiCases {
		if got := IsSingleEmoji(tc.value); got != tc.ok {
			t.Errorf("IsSingleEmoji(%q) = %v, want %v", tc.value, got, tc.ok)
		}
	}
}

func TestReactionValidateLikeDislike(t *testing.T) {
	r := defaulted(t, ReactionRules{Mode: ReactionsLikeDislike})
	runReactionCases(t, r, []reactionCase{
		{"like", "like", true},
		{"dislike", "dislike", true},
		{"empty", "", false},
		{"capitalised", "Like", false},
		{"upper case", "DISLIKE", false},
		{"padded", " like", false},
		{"trailing newline", "like\n", false},
		{"emoji", "👍", false},
		{"other word", "love", false},
		{"both", "like,dislike", false},
	})
}

func TestReactionValidateCustom(t *testing.T) {
	t.Run("default MaxLength 32", func(t *testing.T) {
		r := defaulted(t, ReactionRules{Mode: ReactionsCustom})
		if r.MaxLength != 32 {
			t.Fatalf("MaxLength = %d, want 32", r.MaxLength)
		}
		runReactionCases(t, r, []reactionCase{
			{"one letter", "a", true},
			{"word", "like", true},
			{"emoji", "👍", true},
			{"two emoji", "👍👍", true},
			{"space", " ", true},
			{"32 ascii", strings.Repeat("a", 32), true},
			{"33 ascii", strings.Repeat("a", 33), false},
			{"32 two-byte runes (64 bytes)", strings.Repeat("é", 32), true},
			{"33 two-byte runes", strings.Repeat("é", 33), false},
			{"32 four-byte runes (128 bytes)", strings.Repeat("😀", 32), true},
			{"33 four-byte runes", strings.Repeat("😀", 33), false},
			{"empty", "", false},
			{"invalid UTF-8", "ok\xff", false},
		})
	})
	t.Run("MaxLength 5", func(t *testing.T) {
		r := defaulted(t, ReactionRules{Mode: ReactionsCustom, MaxLength: 5})
		runReactionCases(t, r, []reactionCase{
			{"1 rune", "x", true},
			{"5 runes, 6 bytes", "héllo", true},
			{"5 runes, 20 bytes", "🎉🎉🎉🎉🎉", true},
			{"6 runes", "héllo!", false},
			{"6 ascii", "abcdef", false},
			{"empty", "", false},
		})
	})
	t.Run("MaxLength 1", func(t *testing.T) {
		r := defaulted(t, ReactionRules{Mode: ReactionsCustom, MaxLength: 1})
		runReactionCases(t, r, []reactionCase{
			{"1 rune", "字", true},
			{"2 runes", "ab", false},
			{"skin tone emoji is 2 runes", "👍🏽", false},
		})
	})
	// Validate on rules that did not go through WithDefaults treats a zero
	// MaxLength as the default, the way it treats a zero Mode as emoji.
	t.Run("raw rules with zero MaxLength", func(t *testing.T) {
		runReactionCases(t, ReactionRules{Mode: ReactionsCustom}, []reactionCase{
			{"word", "wow", true},
			{"32 runes", strings.Repeat("ü", 32), true},
			{"33 runes", strings.Repeat("ü", 33), false},
			{"empty", "", false},
		})
	})
}

func TestReactionValidateAllowedWinsOverMode(t *testing.T) {
	tests := []struct {
		name  string
		rules ReactionRules
		cases []reactionCase
	}{
		{
			name:  "list over emoji mode",
			rules: ReactionRules{Mode: ReactionsEmoji, Allowed: []string{"+1", "👍"}},
			cases: []reactionCase{
				{"listed text", "+1", true},
				{"listed emoji", "👍", true},
				{"unlisted emoji", "😀", false},
				{"empty", "", false},
			},
		},
		{
			name:  "list over default mode",
			rules: ReactionRules{Allowed: []string{"wow"}},
			cases: []reactionCase{
				{"listed", "wow", true},
				{"unlisted emoji", "👍", false},
				{"case differs", "Wow", false},
			},
		},
		{
			name:  "list over like_dislike",
			rules: ReactionRules{Mode: ReactionsLikeDislike, Allowed: []string{"👍", "👎", "love"}},
			cases: []reactionCase{
				{"listed emoji", "👎", true},
				{"listed word", "love", true},
				{"like not listed", "like", false},
				{"dislike not listed", "dislike", false},
			},
		},
		{
			name:  "list over custom MaxLength",
			rules: ReactionRules{Mode: ReactionsCustom, MaxLength: 2, Allowed: []string{"much longer than two"}},
			cases: []reactionCase{
				{"listed long value", "much longer than two", true},
				{"short unlisted", "ab", false},
				{"prefix of listed", "much", false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runReactionCases(t, defaulted(t, tt.rules), tt.cases)
		})
	}
}

func TestReactionRulesExclusive(t *testing.T) {
	tests := []struct {
		name  string
		rules ReactionRules
		want  bool
	}{
		{"zero value", ReactionRules{}, false},
		{"emoji", ReactionRules{Mode: ReactionsEmoji}, false},
		{"custom", ReactionRules{Mode: ReactionsCustom}, false},
		{"like_dislike", ReactionRules{Mode: ReactionsLikeDislike}, true},
		{"like_dislike with allowed list", ReactionRules{Mode: ReactionsLikeDislike, Allowed: []string{"like", "dislike"}}, false},
		{"emoji with allowed list", ReactionRules{Mode: ReactionsEmoji, Allowed: []string{"👍"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rules.Exclusive(); got != tt.want {
				t.Errorf("Exclusive() = %v, want %v", got, tt.want)
			}
			if got := defaulted(t, tt.rules).Exclusive(); got != tt.want {
				t.Errorf("Exclusive() after defaults = %v, want %v", got, tt.want)
			}
		})
	}
}
