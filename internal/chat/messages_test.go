package chat

import (
	"strings"
	"testing"
)

func TestValidateMessageText(t *testing.T) {
	tests := []struct {
		name        string
		text        string
		attachments int
		maxLength   int
		wantErr     string // "" = accepted; otherwise a substring of the error
	}{
		// text and attachment rule
		{"plain text", "hello", 0, 4000, ""},
		{"empty without attachments", "", 0, 4000, "text or at least one attachment"},
		{"space only", " ", 0, 4000, "text or at least one attachment"},
		{"whitespace mix only", " \t\r\n ", 0, 4000, "text or at least one attachment"},
		{"unicode whitespace only", "\u00a0\u3000\u2003", 0, 4000, "text or at least one attachment"},
		{"empty with one attachment", "", 1, 4000, ""},
		{"empty with ten attachments", "", 10, 4000, ""},
		{"whitespace with attachment", "  ", 1, 4000, ""},
		{"text with attachment", "look", 2, 4000, ""},
		{"text surrounded by spaces", "  hi  ", 0, 4000, ""},
		{"single emoji", "👍", 0, 4000, ""},

		// invisible characters count as empty
		{"zero-width space only", "\u200b", 0, 4000, "text or at least one attachment"},
		{"zero-width joiners only", "\u200c\u200d", 0, 4000, "text or at least one attachment"},
		{"word joiner and BOM only", "\u2060\ufeff", 0, 4000, "text or at least one attachment"},
		{"NUL only", "\x00", 0, 4000, "text or at least one attachment"},
		{"control characters only", "\x00\x07\x1b\x7f\u0085", 0, 4000, "text or at least one attachment"},
		{"bidi marks only", "\u200e\u200f\u202e\u2066", 0, 4000, "text or at least one attachment"},
		{"soft hyphen only", "\u00ad", 0, 4000, "text or at least one attachment"},
		{"variation selector only", "\ufe0f", 0, 4000, "text or at least one attachment"},
		{"Hangul fillers only", "\u3164\uffa0\u115f", 0, 4000, "text or at least one attachment"},
		{"braille blank only", "\u2800", 0, 4000, "text or at least one attachment"},
		{"combining grapheme joiner only", "\u034f", 0, 4000, "text or at least one attachment"},
		{"tag characters only", "\U000e0041\U000e007f", 0, 4000, "text or at least one attachment"},
		{"unassigned code point only", "\U000e0fff\u0378", 0, 4000, "text or at least one attachment"},
		{"mixed invisibles and spaces", " \u200b\t\u00a0\ufeff\x00 ", 0, 4000, "text or at least one attachment"},
		{"invisibles with attachment", "\u200b", 1, 4000, ""},
		{"visible text among invisibles", "\u200bhi\u200b", 0, 4000, ""},
		{"emoji with variation selector", "\u2764\ufe0f", 0, 4000, ""},
		{"emoji ZWJ sequence", "👩\u200d💻", 0, 4000, ""},
		{"replacement character is visible", "\ufffd", 0, 4000, ""},
		{"combining mark is visible", "\u0301", 0, 4000, ""},
		{"private use character is visible", "\ue000", 0, 4000, ""},
		{"CJK", "字", 0, 4000, ""},
		{"digit", "0", 0, 4000, ""},
		{"punctuation", ".", 0, 4000, ""},

		// length in characters (runes), not bytes
		{"exact limit ascii", strings.Repeat("a", 4000), 0, 4000, ""},
		{"limit+1 ascii", strings.Repeat("a", 4001), 0, 4000, "at most 4000"},
		{"exact limit two-byte runes", strings.Repeat("é", 4000), 0, 4000, ""},
		{"limit+1 two-byte runes", strings.Repeat("é", 4001), 0, 4000, "at most 4000"},
		{"exact limit four-byte runes", strings.Repeat("😀", 4000), 0, 4000, ""},
		{"limit+1 four-byte runes", strings.Repeat("😀", 4001), 0, 4000, "got 4001"},
		{"small limit exact, multibyte", "日本語", 0, 3, ""},
		{"small limit +1, multibyte", "日本語!", 0, 3, "at most 3"},
		{"bytes over limit but runes within", "ééé", 0, 5, ""},
		{"limit+1 with attachment still refused", "abcd", 1, 3, "at most 3"},
		{"limit 0 with empty text and attachment", "", 1, 0, ""},
		{"limit 0 with text", "a", 0, 0, "at most 0"},

		// encoding
		{"invalid UTF-8", "hi\xff", 0, 4000, "UTF-8"},
		{"invalid UTF-8 with attachment", "\xc3", 1, 4000, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateMessageText(tt.text, tt.attachments, tt.maxLength)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("ValidateMessageText(%d runes, %d, %d) = %v, want nil", len([]rune(tt.text)), tt.attachments, tt.maxLength, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateMessageText(%d runes, %d, %d) = nil, want an error containing %q", len([]rune(tt.text)), tt.attachments, tt.maxLength, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestHasVisibleText(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"", false},
		{"a", true},
		{" \n\t", false},
		{"\u200b\u200c\u200d\u2060\ufeff", false},
		{"\x00\x01", false},
		{"\u200bx", true},
		{"x\x00", true},
		{"\xff", false},               // an invalid byte is no character
		{"\xff\u200b", false},         // nor with invisibles
		{"\xffa", true},               // a visible character among invalid bytes
		{"\xef\xbf\xbd", true},        // U+FFFD written out is a glyph
		{"\u180e", false},             // Mongolian vowel separator
		{"\u3000\u2003\u00a0", false}, // wide, em and no-break spaces
	}
	for _, tt := range tests {
		if got := HasVisibleText(tt.text); got != tt.want {
			t.Errorf("HasVisibleText(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestValidateMessageTextDefaultLimit(t *testing.T) {
	s, err := Settings{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateMessageText(strings.Repeat("ж", s.MaxMessageLength), 0, s.MaxMessageLength); err != nil {
		t.Errorf("text at the default limit refused: %v", err)
	}
	if err := ValidateMessageText(strings.Repeat("ж", s.MaxMessageLength+1), 0, s.MaxMessageLength); err == nil {
		t.Error("text one over the default limit accepted")
	}
}

func TestValidateAttachmentCount(t *testing.T) {
	tests := []struct {
		name string
		n    int
		max  int
		ok   bool
	}{
		{"none", 0, 10, true},
		{"one", 1, 10, true},
		{"exact limit", 10, 10, true},
		{"limit+1", 11, 10, false},
		{"far over", 100, 10, false},
		{"limit 1, one", 1, 1, true},
		{"limit 1, two", 2, 1, false},
		{"limit 0, none", 0, 0, true},
		{"limit 0, one", 1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateAttachmentCount(tt.n, tt.max)
			if tt.ok && err != nil {
				t.Errorf("ValidateAttachmentCount(%d, %d) = %v, want nil", tt.n, tt.max, err)
			}
			if !tt.ok {
				if err == nil {
					t.Errorf("ValidateAttachmentCount(%d, %d) = nil, want an error", tt.n, tt.max)
				} else if !strings.Contains(err.Error(), "at most") {
					t.Errorf("error %q does not state the limit", err)
				}
			}
		})
	}
}
