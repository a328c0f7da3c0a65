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
// labels up, so a pbchat rule is counted once, by pbchat (per user or per
// IP as below), even when an operator turns PocketBase's limiter on. A
// "chat_messages:create" rule would also be counted per IP by PocketBase,
// and everybody behind one NAT address would share it.
const (
	// Per user (audience @auth).
	RateLimitLabelMessages  = "pbchat:messages"
	RateLimitLabelReactions = "pbchat:reactions"
	RateLimitLabelMedia     = "pbchat:media"
	RateLimitLabelWrites    = "pbchat:writes"

	// Per client IP (audience: everybody; see ratelimit_ip.go).
	RateLimitLabelSignUps          = "pbchat:signups"
	RateLimitLabelSignIns          = "pbchat:signins"
	RateLimitLabelAccountEmails    = "pbchat:emails"
	RateLimitLabelRealtimeConnects = "pbchat:realtime"
)

// rateLimitsMigration and ipRateLimitsMigration record in _migrations that
// pbchat's rules were added, so that they are added once: an operator's later
// edits (or deletions) stand. The per-IP rules came later, under their own
// name, so that existing installs get them too.
const (
	rateLimitsMigration   = "1764000002_pbchat_rate_limits.go"
	ipRateLimitsMigration = "1764000005_pbchat_ip_rate_limits.go"
)

// rateLimitMiddlewareID names pbchat's hooks and middleware.
const rateLimitMiddlewareID = "pbchatRateLimit"

func rateLimitRule(label, audience string, l chat.RateLimit) core.RateLimitRule {
	return core.RateLimitRule{Label: label, Audience: audience, MaxRequests: l.MaxRequests, Duration: l.Seconds()}
}

// rateLimitRules pairs pbchat's per-user labels with the configured limits.
func rateLimitRules(limits chat.RateLimits) []core.RateLimitRule {
	return []core.RateLimitRule{
		rateLimitRule(RateLimitLabelMessages, core.RateLimitRuleAudienceAuth, limits.Messages),
		rateLimitRule(RateLimitLabelReactions, core.RateLimitRuleAudienceAuth, limits.Reactions),
		rateLimitRule(RateLimitLabelMedia, core.RateLimitRuleAudienceAuth, limits.Media),
		rateLimitRule(RateLimitLabelWrites, core.RateLimitRuleAudienceAuth, limits.Writes),
	}
}

// bindRateLimits counts chat writes per user: creates, updates and deletes of
// chat records through the records and batch APIs (each batch operation
// counts) and POSTs to /api/chat/ (see countedChatRoute); and the
// unauthenticated surface per client IP (see bindIPRateLimits). The limits
// are the rules with pbchat's labels in PocketBase's rate limit settings,
// read on every request, so a change in the dashboard applies at once; the
// rules are added, from settings.RateLimits, when pbchat is first installed.
//
// PocketBase's own switch (settings.rateLimits.enabled) is left alone: it
// turns on PocketBase's per-IP rules for the whole app (its factory rules
// allow 20 creates per 5s per IP, which would throttle every user behind one
// NAT address together), and its limiter answers 429 without Retry-After.
// pbchat's limits are on unless Config.RateLimits.Disabled. Superusers and
// PocketBase's excluded IPs are not counted, as in PocketBase. A refusal is a
// 429 with Retry-After, for a batch too (see bindBatchRefusal).
func bindRateLimits(app core.App, settings chat.Settings) error {
	if settings.RateLimits.Disabled {
		return nil
	}
	limiter := newUserLimiter()
	bindBatchRefusal(app)
	bindIPRateLimits(app, limiter)

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
				if label := ipLimitedRoute(e.Request); label != "" {
					if err := limiter.checkIP(e, label); err != nil {
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
// POSTs to a room (read, typing) and POST /api/chat/private (a get-or-create
// that looks a user up and may write a room: it costs what a write costs).
// Not the realtime nodes' authorize route (a subscription, not a write).
func countedChatRoute(r *http.Request) bool {
	return r.Method == http.MethodPost &&
		(strings.HasPrefix(r.URL.Path, "/api/chat/rooms/") || r.URL.Path == "/api/chat/private")
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
// once per data dir. Each set is a migration of its own, run in a
// transaction of its own: PocketBase reloads app.Settings() only after a
// commit, so a second migration in the same transaction would start from
// settings without the first one's rules and save over them.
func installRateLimits(app core.App, limits chat.RateLimits) error {
	for _, set := range []struct {
		name  string
		rules []core.RateLimitRule
	}{
		{rateLimitsMigration, rateLimitRules(limits)},
		{ipRateLimitsMigration, ipRateLimitRules(limits)},
	} {
		var list core.MigrationsList
		list.Register(
			func(tx core.App) error { return addRateLimitRules(tx, set.rules) },
			func(tx core.App) error { return removeRateLimitRules(tx, set.rules) },
			set.name,
		)
		if _, err := core.NewMigrationsRunner(app, list).Up(); err != nil {
			return fmt.Errorf("pbchat: rate limits: %w", err)
		}
	}
	return nil
}

// addRateLimitRules adds each of rules whose label no rule has yet.
func addRateLimitRules(app core.App, rules []core.RateLimitRule) error {
	s, err := app.Settings().Clone()
	if err != nil {
		return err
	}
	changed := false
	for _, rule := range rules {
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

// removeRateLimitRules removes the rules with the labels of rules.
func removeRateLimitRules(app core.App, rules []core.RateLimitRule) error {
	s, err := app.Settings().Clone()
	if err != nil {
		return err
	}
	s.RateLimits.Rules = slices.DeleteFunc(s.RateLimits.Rules, func(r core.RateLimitRule) bool {
		return slices.ContainsFunc(rules, func(ours core.RateLimitRule) bool { return ours.Label == r.Label })
	})
	return app.Save(s)
}

// userLimiter counts requests per (label, auth record) and per (label,
// client IP) in fixed windows, as PocketBase's limiter counts them per
// (rule, IP).
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
	return refuse(e, rule, retryAfter)
}

// refuse answers 429 naming rule, with Retry-After in whole seconds until the
// window ends; inside a batch it also tells the batch (see bindBatchRefusal).
func refuse(e *core.RequestEvent, rule core.RateLimitRule, retryAfter time.Duration) error {
	seconds := max(1, int((retryAfter+time.Second-1)/time.Second))
	e.Response.Header().Set("Retry-After", strconv.Itoa(seconds))
	err := e.TooManyRequestsError(
		fmt.Sprintf("Too many requests: at most %d per %ds (%s). Try again later.", rule.MaxRequests, rule.Duration, rule.Label),
		errors.New("triggered rate limit rule: "+rule.String()),
	)
	if batch, ok := e.Get(batchRefusalKey).(*batchRefusal); ok {
		batch.set(err, seconds)
	}
	return err
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
