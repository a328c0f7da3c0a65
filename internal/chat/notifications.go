package chat

import (
	"fmt"
	"net/url"
	"time"
)

// Defaults of NotificationSettings.
const (
	DefaultNotificationWindow       = 10 * time.Second
	DefaultNotificationMaxAttempts  = 8
	DefaultNotificationRetryBackoff = 2 * time.Second
)

// NotificationSettings configures the notifications of new messages: Web
// Push to the browsers a member subscribed, and signed webhooks.
type NotificationSettings struct {
	// Disabled turns notifications off: no outbox rows, no worker.
	Disabled bool

	// Window coalesces: the messages to one member in one room within Window
	// of the first become one notification carrying their count. A
	// notification therefore leaves at most Window after its first message.
	// Default 10s.
	Window time.Duration

	// MaxAttempts is how many times a delivery is tried (a push service or
	// webhook answering 5xx, 429 or not at all) before it is dropped. Default 8.
	MaxAttempts int

	// RetryBackoff is the wait before the first retry, doubled for each
	// following one (at most one hour). Default 2s.
	RetryBackoff time.Duration

	// Subject is the VAPID subject ("mailto:…" or an https URL) push services
	// may use to contact the sender. Default: "mailto:" and the app's sender
	// address (Settings → Mail settings).
	Subject string

	// Webhooks receive every notification, signed. More can be added in the
	// dashboard (the chat_webhooks collection, superusers only).
	Webhooks []WebhookConfig
}

// WebhookConfig is one webhook: every notification is POSTed to URL as JSON
// with the header X-Pbchat-Signature: sha256=<hex HMAC-SHA256 of the body
// keyed with Secret>.
type WebhookConfig struct {
	URL    string
	Secret string
}

func (n NotificationSettings) withDefaults() (NotificationSettings, error) {
	if n.Window == 0 {
		n.Window = DefaultNotificationWindow
	}
	if n.MaxAttempts == 0 {
		n.MaxAttempts = DefaultNotificationMaxAttempts
	}
	if n.RetryBackoff == 0 {
		n.RetryBackoff = DefaultNotificationRetryBackoff
	}
	if n.Window < 0 || n.MaxAttempts < 0 || n.RetryBackoff < 0 {
		return n, fmt.Errorf("Window, MaxAttempts and RetryBackoff must not be negative")
	}
	for i, hook := range n.Webhooks {
		u, err := url.Parse(hook.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return n, fmt.Errorf("Webhooks[%d].URL: not an http(s) URL: %q", i, hook.URL)
		}
		if hook.Secret == "" {
			return n, fmt.Errorf("Webhooks[%d].Secret: required", i)
		}
	}
	return n, nil
}
