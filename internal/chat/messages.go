package chat

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// ValidateMessageText checks a message's text against the length limit and
// the rule that a message carries visible text or at least one attachment.
func ValidateMessageText(text string, attachments, maxLength int) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("text must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > maxLength {
		return fmt.Errorf("text must be at most %d characters, got %d", maxLength, n)
	}
	if attachments == 0 && !HasVisibleText(text) {
		return fmt.Errorf("a message needs text or at least one attachment (text without a visible character counts as empty)")
	}
	return nil
}

// HasVisibleText reports whether text has at least one character that a
// reader sees. Whitespace, control characters (U+0000 …), format characters
// (zero-width space U+200B, joiners U+200C/U+200D, word joiner U+2060, byte
// order mark U+FEFF, bidi marks, soft hyphen …), variation selectors, the
// other default-ignorable code points (Hangul fillers, U+034F …), blank
// glyphs (U+2800) and unassigned code points are not visible.
func HasVisibleText(text string) bool {
	for len(text) > 0 {
		r, size := utf8.DecodeRuneInString(text)
		text = text[size:]
		if (r != utf8.RuneError || size > 1) && Visible(r) { // an invalid byte is not a character
			return true
		}
	}
	return false
}

// Visible reports whether r is a character a reader sees on its own: a
// letter, mark, number, punctuation or symbol (or a private-use character,
// which fonts draw), and not one of the invisible kinds HasVisibleText names.
func Visible(r rune) bool {
	switch {
	case unicode.IsSpace(r),
		unicode.In(r, unicode.Cc, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point):
		return false
	case r == '\u2800', r == '\U0001D159': // braille pattern blank, musical null notehead: drawn as nothing
		return false
	}
	return unicode.IsGraphic(r) || unicode.Is(unicode.Co, r)
}

// ValidateAttachmentCount checks how many media one message names.
func ValidateAttachmentCount(n, max int) error {
	if n > max {
		return fmt.Errorf("a message may carry at most %d attachments, got %d", max, n)
	}
	return nil
}
