package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pbchat/pbchat/internal/chat"
)

// The window is fixed, as PocketBase's: MaxRequests per Duration, then a
// fresh budget; finished windows are forgotten.
func TestUserLimiterWindow(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := newLimiter()
	l.now = func() time.Time { return now }
	rule := core.RateLimitRule{Label: LabelMessages, MaxRequests: 2, Duration: 10}

	for i := 0; i < 2; i++ {
		if ok, _ := l.consume("a", rule); !ok {
			t.Fatalf("request %d refused within the limit", i+1)
		}
	}
	now = now.Add(4 * time.Second)
	ok, retry := l.consume("a", rule)
	if ok || retry != 6*time.Second {
		t.Fatalf("3rd request: allowed=%v retry=%s, want refused with 6s left", ok, retry)
	}
	if ok, _ := l.consume("b", rule); !ok {
		t.Fatalf("another key shares a's budget")
	}
	now = now.Add(6 * time.Second)
	if ok, _ := l.consume("a", rule); !ok {
		t.Fatalf("refused after the window ended")
	}

	// A lowered limit applies to a running window.
	if ok, _ := l.consume("a", core.RateLimitRule{Label: rule.Label, MaxRequests: 1, Duration: 10}); ok {
		t.Fatalf("lowered limit not applied")
	}

	now = now.Add(2 * time.Minute)
	l.consume("c", rule)
	if n := l.size(); n != 1 {
		t.Fatalf("limiter holds %d windows after a sweep, want 1", n)
	}
}

func TestIPInList(t *testing.T) {
	for _, c := range []struct {
		list []string
		ip   string
		want bool
	}{
		{[]string{"127.0.0.0/8"}, "127.0.0.1", true},
		{[]string{"10.0.0.1"}, "10.0.0.1", true},
		{[]string{"10.0.0.1"}, "10.0.0.2", false},
		{nil, "10.0.0.1", false},
		{[]string{"::1"}, "::1", true},
		{[]string{"garbage"}, "10.0.0.1", false},
		{[]string{"10.0.0.0/8"}, "", false},
	} {
		if got := ipInList(c.list, c.ip); got != c.want {
			t.Errorf("ipInList(%v, %q) = %v", c.list, c.ip, got)
		}
	}
}

// An IPv4 client counts under its address, an IPv6 client under its /64.
func TestIPKey(t *testing.T) {
	for _, c := range []struct{ ip, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not an ip", "not an ip"},
	} {
		if got := ipKey(c.ip); got != c.want {
			t.Errorf("ipKey(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
}

// The routes the per-IP rules count, and a few they must not.
func TestIPLimitedRoute(t *testing.T) {
	for _, c := range []struct{ method, path, want string }{
		{http.MethodGet, "/api/realtime", LabelRealtimeConnects},
		{http.MethodPost, "/api/realtime", ""}, // setting subscriptions: the connection is open already
		{http.MethodPost, "/api/collections/users/auth-with-password", LabelSignIns},
		{http.MethodPost, "/api/collections/_superusers/auth-with-password", LabelSignIns},
		{http.MethodPost, "/api/collections/members/auth-with-otp", LabelSignIns},
		{http.MethodPost, "/api/collections/users/auth-with-oauth2", LabelSignIns},
		{http.MethodPost, "/api/collections/users/request-otp", LabelSignIns},
		{http.MethodPost, "/api/collections/users/request-password-reset", LabelAccountEmails},
		{http.MethodPost, "/api/collections/users/request-verification", LabelAccountEmails},
		{http.MethodPost, "/api/collections/users/request-email-change", LabelAccountEmails},
		{http.MethodPost, "/api/collections/users/auth-refresh", ""}, // signed in already
		{http.MethodPost, "/api/collections/users/confirm-password-reset", ""},
		{http.MethodGet, "/api/collections/users/auth-methods", ""},
		{http.MethodPost, "/api/collections/users/records", ""}, // sign-ups: a record hook
		{http.MethodPost, "/api/collections/chat_messages/records", ""},
		{http.MethodPost, "/api/collections//auth-with-password", ""},
		{http.MethodGet, "/api/collections/users/auth-with-password", ""},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		if got := ipLimitedRoute(r); got != c.want {
			t.Errorf("%s %s counted as %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

// A data dir installed before the per-IP rules existed gets them on the next
// start; the per-user rules it has (an operator's edits included) stand.
func TestIPRateLimitsAddedToExistingInstall(t *testing.T) {
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()
	limits, err := chat.Settings{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	// The install of an earlier pbchat: the per-user rules only, one of them edited.
	var old core.MigrationsList
	old.Register(func(tx core.App) error {
		rules := userRules(limits.RateLimits)
		rules[0].MaxRequests = 7
		return addRules(tx, rules)
	}, nil, userRulesMigration)
	if _, err := core.NewMigrationsRunner(app, old).Up(); err != nil {
		t.Fatal(err)
	}
	if err := install(app, limits.RateLimits); err != nil {
		t.Fatal(err)
	}
	found := map[string]core.RateLimitRule{}
	for _, r := range app.Settings().RateLimits.Rules {
		found[r.Label] = r
	}
	if found[LabelMessages].MaxRequests != 7 {
		t.Errorf("the edited per-user rule became %+v", found[LabelMessages])
	}
	for _, rule := range ipRules(limits.RateLimits) {
		if found[rule.Label] != rule {
			t.Errorf("%s = %+v, want %+v", rule.Label, found[rule.Label], rule)
		}
	}
}

// `migrate history-sync` deletes pbchat's _migrations rows; the next start
// must not add again a rule the operator had deleted.
func TestDeletedRuleStaysDeletedAfterHistorySync(t *testing.T) {
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()
	limits, err := chat.Settings{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := install(app, limits.RateLimits); err != nil {
		t.Fatal(err)
	}
	s, err := app.Settings().Clone()
	if err != nil {
		t.Fatal(err)
	}
	s.RateLimits.Rules = slices.DeleteFunc(s.RateLimits.Rules, func(r core.RateLimitRule) bool { return r.Label == LabelMessages })
	if err := app.Save(s); err != nil {
		t.Fatal(err)
	}
	// What history-sync does to migrations it does not know.
	if _, err := app.DB().NewQuery("DELETE FROM _migrations WHERE file IN ({:a}, {:b})").
		Bind(dbx.Params{"a": userRulesMigration, "b": ipRulesMigration}).Execute(); err != nil {
		t.Fatal(err)
	}
	if err := install(app, limits.RateLimits); err != nil {
		t.Fatal(err)
	}
	for _, r := range app.Settings().RateLimits.Rules {
		if r.Label == LabelMessages {
			t.Fatalf("the deleted rule came back: %+v", r)
		}
	}
}
