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

// RateLimits are pbchat's per-user limits on chat writes. They are counted
// per auth record, so users behind one NAT address or proxy do not share a
// budget; superusers and PocketBase's excluded IPs are not limited. Each
// limit is written once, at install, into PocketBase's rate limit settings
// (Dashboard → Settings → Rate limits) under its label (pbchat:messages, …);
// from then on those settings are authoritative: an operator edits a rule
// there, or deletes it to lift that limit. Past a limit the API answers 429.
type RateLimits struct {
	// Disabled turns pbchat's per-user limits off. Default false: on.
	Disabled bool

	// Messages: chat_messages created, through the records or batch API.
	// Default 50 per 10s.
	Messages RateLimit

	// Reactions: chat_message_reactions created. Default 50 per 10s.
	Reactions RateLimit

	// Media: chat_media uploaded. Default 30 per 60s.
	Media RateLimit

	// Writes: every other chat write (rooms, memberships, message and
	// reaction updates and deletes, POST /api/chat/rooms/{id}/read and
	// /typing). Default 100 per 10s. POST /api/chat/private is not counted:
	// it is a get-or-create bounded by the number of users.
	Writes RateLimit
}

// Default per-user rate limits.
var (
	DefaultMessagesRateLimit  = RateLimit{MaxRequests: 50, Duration: 10 * time.Second}
	DefaultReactionsRateLimit = RateLimit{MaxRequests: 50, Duration: 10 * time.Second}
	DefaultMediaRateLimit     = RateLimit{MaxRequests: 30, Duration: 60 * time.Second}
	DefaultWritesRateLimit    = RateLimit{MaxRequests: 100, Duration: 10 * time.Second}
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
