package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/core"
)

// limiter counts requests per (label, auth record) and per (label, client
// IP) in fixed windows, as PocketBase's limiter counts them per (rule, IP).
type limiter struct {
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

func newLimiter() *limiter {
	return &limiter{windows: map[string]*window{}, now: time.Now}
}

// check answers 429 when the caller is past the rule labelled label.
func (l *limiter) check(e *core.RequestEvent, label string) error {
	if e.Auth == nil || e.HasSuperuserAuth() {
		return nil // guests write nothing in chat; superusers are never limited
	}
	if ipInList(e.App.Settings().RateLimits.ExcludedIPs, e.RealIP()) {
		return nil
	}
	return l.take(e, label, core.RateLimitRuleAudienceAuth, e.Auth.Collection().Id+"\x00"+e.Auth.Id)
}

// take counts one request of key (a user or an IP) against the rule labelled
// label for audience, and answers 429 past it. A label without a rule (the
// operator removed it) is no limit.
func (l *limiter) take(e *core.RequestEvent, label, audience, key string) error {
	rule, ok := e.App.Settings().RateLimits.FindRateLimitRule([]string{label}, core.RateLimitRuleAudienceAll, audience)
	if !ok {
		return nil
	}
	allowed, retryAfter := l.consume(label+"\x00"+key, rule)
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
	RefuseBatch(e, err, seconds)
	return err
}

// consume takes one request from key's window under rule and reports
// whether it was allowed, and if not, how long until the window resets.
func (l *limiter) consume(key string, rule core.RateLimitRule) (bool, time.Duration) {
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
func (l *limiter) sweep(now time.Time) {
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

// size is how many windows the limiter holds (tests).
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.windows)
}
