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
