package chat

import (
	"fmt"
	"time"
)

// RateLimit allows MaxRequests per Duration, counted in fixed windows as
// PocketBase's own rate limiter counts them. Duration is in whole seconds
// (PocketBase stores rate limit rules in seconds); a zero field takes its
// default.
type RateLimit struct {
	MaxRequests int
	Duration    time.Duration
}

// RateLimits are pbchat's limits: chat writes per user, and the
// unauthenticated surface (sign-up, sign-in, account e-mails, realtime
// connects) per client IP.
//
// Chat writes are counted per auth record, so users behind one NAT address or
// proxy do not share a budget. The per-IP limits count only requests that
// come before a session (signing up, signing in, asking for a reset e-mail,
// opening the realtime stream), never chat use. Superusers and PocketBase's
// excluded IPs (Dashboard → Settings → Rate limits) are never limited.
//
// Each limit is written once, at install, into PocketBase's rate limit
// settings under its label (pbchat:messages, pbchat:signups, …); from then
// on those settings are authoritative: an operator edits a rule there, or
// deletes it to lift that limit. Past a limit the API answers 429 with
// Retry-After.
type RateLimits struct {
	// Disabled turns every pbchat limit off, per user and per IP (for load
	// tests). Default false: on.
	Disabled bool

	// Messages: chat_messages created, through the records or batch API.
	// Default 50 per 10s.
	Messages RateLimit

	// Reactions: chat_message_reactions created. Default 50 per 10s.
	Reactions RateLimit

	// Media: chat_media uploaded. Default 30 per 60s.
	Media RateLimit

	// Writes: every other chat write (rooms, memberships, message and
	// reaction updates and deletes, POST /api/chat/private,
	// POST /api/chat/rooms/{id}/read and /typing). Default 100 per 10s.
	Writes RateLimit

	// SignUps, per IP: records created in any auth collection (sign-up)
	// through the records or batch API (or an OAuth2 sign-in that creates
	// the account). Default 10 per hour.
	SignUps RateLimit

	// SignIns, per IP: auth-with-password, auth-with-otp, auth-with-oauth2
	// and request-otp of any auth collection. Default 30 per 60s.
	SignIns RateLimit

	// AccountEmails, per IP: request-password-reset, request-verification
	// and request-email-change (each sends an e-mail). Default 5 per 10 min.
	AccountEmails RateLimit

	// RealtimeConnects, per IP: GET /api/realtime (opening a realtime
	// stream; an SDK reconnects at least every 5 minutes while idle).
	// Default 120 per 60s.
	RealtimeConnects RateLimit
}

// Default rate limits.
var (
	DefaultMessagesRateLimit         = RateLimit{MaxRequests: 50, Duration: 10 * time.Second}
	DefaultReactionsRateLimit        = RateLimit{MaxRequests: 50, Duration: 10 * time.Second}
	DefaultMediaRateLimit            = RateLimit{MaxRequests: 30, Duration: 60 * time.Second}
	DefaultWritesRateLimit           = RateLimit{MaxRequests: 100, Duration: 10 * time.Second}
	DefaultSignUpsRateLimit          = RateLimit{MaxRequests: 10, Duration: time.Hour}
	DefaultSignInsRateLimit          = RateLimit{MaxRequests: 30, Duration: time.Minute}
	DefaultAccountEmailsRateLimit    = RateLimit{MaxRequests: 5, Duration: 10 * time.Minute}
	DefaultRealtimeConnectsRateLimit = RateLimit{MaxRequests: 120, Duration: time.Minute}
)

func (r RateLimits) withDefaults() (RateLimits, error) {
	out := r
	for _, l := range []struct {
		name  string
		limit *RateLimit
		def   RateLimit
	}{
		{"Messages", &out.Messages, DefaultMessagesRateLimit},
		{"Reactions", &out.Reactions, DefaultReactionsRateLimit},
		{"Media", &out.Media, DefaultMediaRateLimit},
		{"Writes", &out.Writes, DefaultWritesRateLimit},
		{"SignUps", &out.SignUps, DefaultSignUpsRateLimit},
		{"SignIns", &out.SignIns, DefaultSignInsRateLimit},
		{"AccountEmails", &out.AccountEmails, DefaultAccountEmailsRateLimit},
		{"RealtimeConnects", &out.RealtimeConnects, DefaultRealtimeConnectsRateLimit},
	} {
		if l.limit.MaxRequests == 0 {
			l.limit.MaxRequests = l.def.MaxRequests
		}
		if l.limit.Duration == 0 {
			l.limit.Duration = l.def.Duration
		}
		if l.limit.MaxRequests < 0 {
			return out, fmt.Errorf("%s.MaxRequests must not be negative", l.name)
		}
		if l.limit.Duration < time.Second || l.limit.Duration%time.Second != 0 {
			return out, fmt.Errorf("%s.Duration must be whole seconds, at least 1s (got %s)", l.name, l.limit.Duration)
		}
	}
	return out, nil
}

// Seconds is the limit's window in seconds, as PocketBase stores it.
func (r RateLimit) Seconds() int64 { return int64(r.Duration / time.Second) }
