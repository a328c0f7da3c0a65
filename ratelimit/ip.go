package ratelimit

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
// request. They are pbchat's own (PocketBase's limiter stays off, see Bind)
// and count per client IP (e.RealIP(), which follows PocketBase's trusted
// proxy settings); an IPv6 client counts per /64, the block one subscriber
// gets. They never count chat use: a signed-in user's
// requests other than these go by the per-user limits.
//
// The rules' audience is everybody (""): a signed-in attacker sending their
// token along would otherwise skip them. An operator may narrow a rule to
// "@guest" in the dashboard.

// ipRules pairs pbchat's per-IP labels with the configured limits.
func ipRules(limits chat.RateLimits) []core.RateLimitRule {
	return rules(core.RateLimitRuleAudienceAll,
		labelled{LabelSignUps, limits.SignUps}, labelled{LabelSignIns, limits.SignIns},
		labelled{LabelAccountEmails, limits.AccountEmails}, labelled{LabelRealtimeConnects, limits.RealtimeConnects})
}

// authActions maps the actions of /api/collections/{collection}/{action}
// to the per-IP rule that counts them.
var authActions = map[string]string{
	"auth-with-password":     LabelSignIns,
	"auth-with-otp":          LabelSignIns,
	"auth-with-oauth2":       LabelSignIns,
	"request-otp":            LabelSignIns,
	"request-password-reset": LabelAccountEmails,
	"request-verification":   LabelAccountEmails,
	"request-email-change":   LabelAccountEmails,
}

// ipLimitedRoute is the per-IP rule that counts r, or "": opening the
// realtime stream, and the sign-in and e-mail actions of any auth collection.
// Sign-ups are records creates, counted by a record hook (they also come
// through /api/batch).
func ipLimitedRoute(r *http.Request) string {
	if r.Method == http.MethodGet && r.URL.Path == "/api/realtime" {
		return LabelRealtimeConnects
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

// bindIP counts sign-ups: records created in an auth collection
// through the records or batch API, before any other hook reads the
// database. (The routes are counted by the middleware of Bind.)
func bindIP(app core.App, l *limiter) {
	app.OnRecordCreateRequest().Bind(&hook.Handler[*core.RecordRequestEvent]{
		Priority: -100,
		Func: func(e *core.RecordRequestEvent) error {
			if e.Collection.IsAuth() {
				if err := l.checkIP(e.RequestEvent, LabelSignUps); err != nil {
					return err
				}
			}
			return e.Next()
		},
	})
}

// checkIP answers 429 when the client's IP is past the rule labelled label.
func (l *limiter) checkIP(e *core.RequestEvent, label string) error {
	if e.HasSuperuserAuth() {
		return nil
	}
	ip := e.RealIP()
	if ip == "" || ipInList(e.App.Settings().RateLimits.ExcludedIPs, ip) {
		return nil
	}
	audience := core.RateLimitRuleAudienceGuest
	if e.Auth != nil {
		audience = core.RateLimitRuleAudienceAuth
	}
	return l.take(e, label, audience, "ip\x00"+ipKey(ip))
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
