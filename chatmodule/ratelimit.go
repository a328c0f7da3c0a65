package chatmodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// Per-user rate limits, re-exported for host apps; see chat.RateLimits.
type (
	RateLimits = chat.RateLimits
	RateLimit  = chat.RateLimit
)

// Labels of pbchat's rules in PocketBase's rate limit settings.
//
// PocketBase's own limiter counts per client IP and looks rules up by
// "collection:action", "*:action" and request path; it never looks these
// labels up, so a pbchat rule is counted once, per user, by pbchat. A
// "chat_messages:create" rule would also be counted per IP by PocketBase,
// and everybody behind one NAT address would share it.
const (
	RateLimitLabelMessages  = "pbchat:messages"
	RateLimitLabelReactions = "pbchat:reactions"
	RateLimitLabelMedia     = "pbchat:media"
	RateLimitLabelWrites    = "pbchat:writes"
)

// rateLimitsMigration records in _migrations that pbchat's rules were added,
// so that they are added once: an operator's later edits (or deletions) stand.
const rateLimitsMigration = "1764000002_pbchat_rate_limits.go"

// rateLimitMiddlewareID names pbchat's hooks and middleware.
const rateLimitMiddlewareID = "pbchatRateLimit"

// rateLimitRules pairs pbchat's labels with the configured limits.
func rateLimitRules(limits chat.RateLimits) []core.RateLimitRule {
	rule := func(label string, l chat.RateLimit) core.RateLimitRule {
		return core.RateLimitRule{Label: label, Audience: core.RateLimitRuleAudienceAuth, MaxRequests: l.MaxRequests, Duration: l.Seconds()}
	}
	return []core.RateLimitRule{
		rule(RateLimitLabelMessages, limits.Messages),
		rule(RateLimitLabelReactions, limits.Reactions),
		rule(RateLimitLabelMedia, limits.Media),
		rule(RateLimitLabelWrites, limits.Writes),
	}
}

// bindRateLimits counts chat writes per user: creates, updates and deletes of
// chat records through the records and batch APIs (each batch operation
// counts) and POSTs to /api/chat/ (see countedChatRoute). The limits are the rules with pbchat's
// labels in PocketBase's rate limit settings, read on every request, so a
// change in the dashboard applies at once; the rules are added, from
// settings.RateLimits, when pbchat is first installed.
//
// PocketBase's own switch (settings.rateLimits.enabled) is left alone: it
// turns on PocketBase's per-IP rules for the whole app (its factory rules
// allow 20 creates per 5s per IP, which would throttle every user behind one
// NAT address together). pbchat's per-user limits are on unless
// Config.RateLimits.Disabled. Superusers and PocketBase's excluded IPs are
// not counted, as in PocketBase.
func bindRateLimits(app core.App, settings chat.Settings) error {
	if settings.RateLimits.Disabled {
		return nil
	}
	limiter := newUserLimiter()

	for _, collection := range migrations.AllCollections {
		create := RateLimitLabelWrites
		switch collection {
		case migrations.Messages:
			create = RateLimitLabelMessages
		case migrations.MessageReacts:
			create = RateLimitLabelReactions
		case migrations.Media:
			create = RateLimitLabelMedia
		}
		app.OnRecordCreateRequest(collection).Bind(recordRateLimit(limiter, create))
		app.OnRecordUpdateRequest(collection).Bind(recordRateLimit(limiter, RateLimitLabelWrites))
		app.OnRecordDeleteRequest(collection).Bind(recordRateLimit(limiter, RateLimitLabelWrites))
	}

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		if err := installRateLimits(se.App, settings.RateLimits); err != nil {
			return err
		}
		se.Router.Bind(&hook.Handler[*core.RequestEvent]{
			Id: rateLimitMiddlewareID,
			// After PocketBase has loaded the auth token and run its own limiter.
			Priority: apis.DefaultRateLimitMiddlewarePriority + 1,
			Func: func(e *core.RequestEvent) error {
				if countedChatRoute(e.Request) {
					if err := limiter.check(e, RateLimitLabelWrites); err != nil {
						return err
					}
				}
				return e.Next()
			},
		})
		return se.Next()
	})
	if app.IsBootstrapped() {
		return installRateLimits(app, settings.RateLimits)
	}
	return nil
}

// countedChatRoute reports the /api/chat/ requests that count as writes:
// POSTs to a room (read, typing). Not POST /api/chat/private, a
// get-or-create whose writes are bounded by the number of users (one room per
// pair, ever), nor the realtime nodes' authorize route (a subscription, not
// a write).
func countedChatRoute(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/chat/rooms/")
}

// recordRateLimit runs before pbchat's permission hooks (which read the
// database), so a flood is refused cheaply.
func recordRateLimit(limiter *userLimiter, label string) *hook.Handler[*core.RecordRequestEvent] {
	return &hook.Handler[*core.RecordRequestEvent]{
		// No Id: the tagged hooks of every collection share one hook, where
		// a repeated Id would replace the previous binding.
		Priority: -100,
		Func: func(e *core.RecordRequestEvent) error {
			if err := limiter.check(e.RequestEvent, label); err != nil {
				return err
			}
			return e.Next()
		},
	}
}

// installRateLimits adds pbchat's rules to PocketBase's rate limit settings,
// once per data dir.
func installRateLimits(app core.App, limits chat.RateLimits) error {
	var list core.MigrationsList
	list.Register(
		func(tx core.App) error { return addRateLimitRules(tx, limits) },
		func(tx core.App) error { return removeRateLimitRules(tx) },
		rateLimitsMigration,
	)
	if _, err := core.NewMigrationsRunner(app, list).Up(); err != nil {
		return fmt.Errorf("pbchat: rate limits: %w", err)
	}
	return nil
}

// addRateLimitRules adds each pbchat rule whose label no rule has yet.
func addRateLimitRules(app core.App, limits chat.RateLimits) error {
	s, err := app.Settings().Clone()
	if err != nil {
		return err
	}
	changed := false
	for _, rule := range rateLimitRules(limits) {
		if !slices.ContainsFunc(s.RateLimits.Rules, func(r core.RateLimitRule) bool { return r.Label == rule.Label }) {
			s.RateLimits.Rules = append(s.RateLimits.Rules, rule)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return app.Save(s)
}

func removeRateLimitRules(app core.App) error {
	s, err := app.Settings().Clone()
	if err != nil {
		return err
	}
	s.RateLimits.Rules = slices.DeleteFunc(s.RateLimits.Rules, func(r core.RateLimitRule) bool {
		return strings.HasPrefix(r.Label, "pbchat:")
	})
	return app.Save(s)
}

// userLimiter counts requests per (label, auth record) in fixed windows, as
// PocketBase's limiter counts them per (rule, IP).
type userLimiter struct {
	mu        sync.Mutex
	windows   map[string]*window
	lastSweep time.Time
	now       func() time.Time
}

type window struct {
	start    time.Time
	duration time.Duration
	count    int
}

func newUserLimiter() *userLimiter {
	return &userLimiter{windows: map[string]*window{}, now: time.Now}
}

// check answers 429 when the caller is past the rule labelled label.
func (l *userLimiter) check(e *core.RequestEvent, label string) error {
	if e.Auth == nil || e.HasSuperuserAuth() {
		return nil // guests write nothing in chat; superusers are never limited
	}
	config := e.App.Settings().RateLimits
	if ipInList(config.ExcludedIPs, e.RealIP()) {
		return nil
	}
	rule, ok := config.FindRateLimitRule([]string{label}, core.RateLimitRuleAudienceAll, core.RateLimitRuleAudienceAuth)
	if !ok {
		return nil // the operator removed the rule: no limit
	}
	allowed, retryAfter := l.consume(label+"\x00"+e.Auth.Collection().Id+"\x00"+e.Auth.Id, rule)
	if allowed {
		return nil
	}
	e.Response.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	return e.TooManyRequestsError(
		fmt.Sprintf("Too many requests: at most %d per %ds (%s). Try again later.", rule.MaxRequests, rule.Duration, rule.Label),
		errors.New("triggered rate limit rule: "+rule.String()),
	)
}

// consume takes one request from key's window under rule and reports
// whether it was allowed, and if not, how long until the window resets.
func (l *userLimiter) consume(key string, rule core.RateLimitRule) (bool, time.Duration) {
	now := l.now()
	duration := rule.DurationTime()

	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	w := l.windows[key]
	if w == nil || now.Sub(w.start) >= duration || now.Before(w.start) {
		w = &window{start: now}
		l.windows[key] = w
	}
	w.duration = duration
	if w.count >= rule.MaxRequests {
		return false, w.start.Add(duration).Sub(now)
	}
	w.count++
	return true, 0
}

// sweep forgets finished windows, at most once a minute, so memory follows
// the number of recently active users.
func (l *userLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Minute {
		return
	}
	l.lastSweep = now
	for key, w := range l.windows {
		if now.Sub(w.start) >= w.duration {
			delete(l.windows, key)
		}
	}
}

// size is how many windows the limiter holds.
func (l *userLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.windows)
}

// ipInList reports whether ip is one of ipsOrSubnets (PocketBase's
// ExcludedIPs format: single IPs or CIDR subnets).
func ipInList(ipsOrSubnets []string, ip string) bool {
	if len(ipsOrSubnets) == 0 || ip == "" {
		return false
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, item := range ipsOrSubnets {
		if prefix, err := netip.ParsePrefix(item); err == nil {
			if prefix.Contains(addr) {
				return true
			}
		} else if other, err := netip.ParseAddr(item); err == nil && other == addr {
			return true
		}
	}
	return false
}
