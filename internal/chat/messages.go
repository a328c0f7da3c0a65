package chat

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ValidateMessageText checks a message's text against the length limit and
// the rule that a message carries text or at least one attachment.
func ValidateMessageText(text string, attachments, maxLength int) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("text must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > maxLength {
		return fmt.Errorf("text must be at most %d characters, got %d", maxLength, n)
	}
	if attachments == 0 && strings.TrimSpace(text) == "" {
		return fmt.Errorf("a message needs text or at least one attachment")
	}
	return nil
}

// ValidateAttachmentCount checks how many media one message names.
func ValidateAttachmentCount(n, max int) error {
	if n > max {
		return fmt.Errorf("a message may carry at most %d attachments, got %d", max, n)
	}
	return nil
}
