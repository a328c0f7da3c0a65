package chatmodule

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"github.com/pbchat/pbchat/internal/chat"
)

// Per-IP limits on the unauthenticated surface: what anyone can do before
// they have a session, and so what a script can do without one account per
// request. They are pbchat's own (PocketBase's limiter stays off, see
// bindRateLimits) and count per client IP (e.RealIP(), which follows
// PocketBase's trusted proxy settings); an IPv6 client counts per /64, the
// block one subscriber gets. They never count chat use: a signed-in user's
// requests other than these go by the per-user limits.
//
// The rules' audience is everybody (""): a signed-in attacker sending their
// token along would otherwise skip them. An operator may narrow a rule to
// "@guest" in the dashboard.

// ipRateLimitRules pairs pbchat's per-IP labels with the configured limits.
func ipRateLimitRules(limits chat.RateLimits) []core.RateLimitRule {
	return []core.RateLimitRule{
		rateLimitRule(RateLimitLabelSignUps, core.RateLimitRuleAudienceAll, limits.SignUps),
		rateLimitRule(RateLimitLabelSignIns, core.RateLimitRuleAudienceAll, limits.SignIns),
		rateLimitRule(RateLimitLabelAccountEmails, core.RateLimitRuleAudienceAll, limits.AccountEmails),
		rateLimitRule(RateLimitLabelRealtimeConnects, core.RateLimitRuleAudienceAll, limits.RealtimeConnects),
	}
}

// authActions maps the actions of /api/collections/{collection}/{action}
// to the per-IP rule that counts them.
var authActions = map[string]string{
	"auth-with-password":     RateLimitLabelSignIns,
	"auth-with-otp":          RateLimitLabelSignIns,
	"auth-with-oauth2":       RateLimitLabelSignIns,
	"request-otp":            RateLimitLabelSignIns,
	"request-password-reset": RateLimitLabelAccountEmails,
	"request-verification":   RateLimitLabelAccountEmails,
	"request-email-change":   RateLimitLabelAccountEmails,
}

// ipLimitedRoute is the per-IP rule that counts r, or "": opening the
// realtime stream, and the sign-in and e-mail actions of any auth collection.
// Sign-ups are records creates, counted by a record hook (they also come
// through /api/batch).
func ipLimitedRoute(r *http.Request) string {
	if r.Method == http.MethodGet && r.URL.Path == "/api/realtime" {
		return RateLimitLabelRealtimeConnects
	}
	if r.Method != http.MethodPost {
		return ""
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/collections/")
	if !ok {
		return ""
	}
	collection, action, ok := strings.Cut(rest, "/")
	if !ok || collection == "" {
		return ""
	}
	return authActions[action]
}

// bindIPRateLimits counts sign-ups: records created in an auth collection
// through the records or batch API, before any other hook reads the
// database. (The routes are counted by the middleware of bindRateLimits.)
func bindIPRateLimits(app core.App, limiter *userLimiter) {
	app.OnRecordCreateRequest().Bind(&hook.Handler[*core.RecordRequestEvent]{
		Priority: -100,
		Func: func(e *core.RecordRequestEvent) error {
			if e.Collection.IsAuth() {
				if err := limiter.checkIP(e.RequestEvent, RateLimitLabelSignUps); err != nil {
					return err
				}
			}
			return e.Next()
		},
	})
}

// checkIP answers 429 when the client's IP is past the rule labelled label.
func (l *userLimiter) checkIP(e *core.RequestEvent, label string) error {
	if e.HasSuperuserAuth() {
		return nil
	}
	config := e.App.Settings().RateLimits
	ip := e.RealIP()
	if ip == "" || ipInList(config.ExcludedIPs, ip) {
		return nil
	}
	audience := core.RateLimitRuleAudienceGuest
	if e.Auth != nil {
		audience = core.RateLimitRuleAudienceAuth
	}
	rule, ok := config.FindRateLimitRule([]string{label}, core.RateLimitRuleAudienceAll, audience)
	if !ok {
		return nil // the operator removed the rule: no limit
	}
	allowed, retryAfter := l.consume(label+"\x00ip\x00"+ipKey(ip), rule)
	if allowed {
		return nil
	}
	return refuse(e, rule, retryAfter)
}

// ipKey is what one client is counted under: an IPv4 address, or an IPv6
// address's /64.
func ipKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String()
	}
	prefix, err := addr.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return prefix.String()
}
