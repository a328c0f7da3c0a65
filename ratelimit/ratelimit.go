// Package ratelimit counts pbchat's writes per user and its unauthenticated
// surface per client IP, and answers 429 with Retry-After past a limit.
//
// The limits are rules in PocketBase's rate limit settings with pbchat's
// labels (the Label constants), added from chat.Settings.RateLimits when
// pbchat is first installed and read on every request, so an operator's
// edit in the dashboard applies at once. PocketBase's own limiter never
// looks these labels up: a pbchat rule is counted once, by pbchat.
package ratelimit

import (
	"fmt"
	"github.com/pocketbase/dbx"
	"net/http"
	"slices"
	"strings"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"github.com/pbchat/pbchat/internal/chat"
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
	LabelMessages  = "pbchat:messages"
	LabelReactions = "pbchat:reactions"
	LabelMedia     = "pbchat:media"
	LabelWrites    = "pbchat:writes"

	// Per client IP (audience: everybody; see ip.go).
	LabelSignUps          = "pbchat:signups"
	LabelSignIns          = "pbchat:signins"
	LabelAccountEmails    = "pbchat:emails"
	LabelRealtimeConnects = "pbchat:realtime"
)

// userRulesMigration and ipRulesMigration record in _migrations that
// pbchat's rules were added, so that they are added once: an operator's later
// edits (or deletions) stand. The per-IP rules came later, under their own
// name, so that existing installs get them too.
const (
	userRulesMigration = "1764000002_pbchat_rate_limits.go"
	ipRulesMigration   = "1764000005_pbchat_ip_rate_limits.go"
)

// middlewareID names pbchat's hooks and middleware.
const middlewareID = "pbchatRateLimit"

// labelled is a configured limit and the label of its rule.
type labelled struct {
	label string
	limit chat.RateLimit
}

// rules are the rules of pairs, for audience.
func rules(audience string, pairs ...labelled) []core.RateLimitRule {
	out := make([]core.RateLimitRule, len(pairs))
	for i, p := range pairs {
		out[i] = core.RateLimitRule{Label: p.label, Audience: audience, MaxRequests: p.limit.MaxRequests, Duration: p.limit.Seconds()}
	}
	return out
}

// userRules pairs pbchat's per-user labels with the configured limits.
func userRules(limits chat.RateLimits) []core.RateLimitRule {
	return rules(core.RateLimitRuleAudienceAuth,
		labelled{LabelMessages, limits.Messages}, labelled{LabelReactions, limits.Reactions},
		labelled{LabelMedia, limits.Media}, labelled{LabelWrites, limits.Writes})
}

// Bind counts chat writes per user: creates, updates and deletes of chat
// records through the records and batch APIs (each batch operation counts)
// and POSTs to /api/chat/ (see countedChatRoute); and the unauthenticated
// surface per client IP (see bindIP). The limits are the rules with pbchat's
// labels in PocketBase's rate limit settings, read on every request; the
// rules are added, from settings.RateLimits, when pbchat is first installed
// (at once when app is bootstrapped, else when it serves).
//
// PocketBase's own switch (settings.rateLimits.enabled) is left alone: it
// turns on PocketBase's per-IP rules for the whole app (its factory rules
// allow 20 creates per 5s per IP, which would throttle every user behind one
// NAT address together), and its limiter answers 429 without Retry-After.
// pbchat's limits are on unless settings.RateLimits.Disabled. Superusers and
// PocketBase's excluded IPs are not counted, as in PocketBase. A refusal is a
// 429 with Retry-After, for a batch too (see bindBatchRefusal).
func Bind(app core.App, settings chat.Settings) error {
	bindBatchRefusal(app) // slow mode refuses with a 429 too, limits on or off
	if settings.RateLimits.Disabled {
		return nil
	}
	l := newLimiter()
	bindIP(app, l)

	for _, collection := range chat.Collections {
		create := LabelWrites
		switch collection {
		case chat.CollectionMessages:
			create = LabelMessages
		case chat.CollectionMessageReactions:
			create = LabelReactions
		case chat.CollectionMedia:
			create = LabelMedia
		}
		app.OnRecordCreateRequest(collection).Bind(recordLimit(l, create))
		app.OnRecordUpdateRequest(collection).Bind(recordLimit(l, LabelWrites))
		app.OnRecordDeleteRequest(collection).Bind(recordLimit(l, LabelWrites))
	}

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		if err := install(se.App, settings.RateLimits); err != nil {
			return err
		}
		se.Router.Bind(&hook.Handler[*core.RequestEvent]{
			Id: middlewareID,
			// After PocketBase has loaded the auth token and run its own limiter.
			Priority: apis.DefaultRateLimitMiddlewarePriority + 1,
			Func: func(e *core.RequestEvent) error {
				if countedChatRoute(e.Request) {
					if err := l.check(e, LabelWrites); err != nil {
						return err
					}
				}
				if label := ipLimitedRoute(e.Request); label != "" {
					if err := l.checkIP(e, label); err != nil {
						return err
					}
				}
				return e.Next()
			},
		})
		return se.Next()
	})
	if app.IsBootstrapped() {
		return install(app, settings.RateLimits)
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

// recordLimit runs before pbchat's permission hooks (which read the
// database), so a flood is refused cheaply.
func recordLimit(l *limiter, label string) *hook.Handler[*core.RecordRequestEvent] {
	return &hook.Handler[*core.RecordRequestEvent]{
		// No Id: the tagged hooks of every collection share one hook, where
		// a repeated Id would replace the previous binding.
		Priority: -100,
		Func: func(e *core.RecordRequestEvent) error {
			if err := l.check(e.RequestEvent, label); err != nil {
				return err
			}
			return e.Next()
		},
	}
}

// install adds pbchat's rules to PocketBase's rate limit settings, once per
// data dir. Each set is a migration of its own, run in a transaction of its
// own: PocketBase reloads app.Settings() only after a commit, so a second
// migration in the same transaction would start from settings without the
// first one's rules and save over them.
func install(app core.App, limits chat.RateLimits) error {
	for _, set := range []struct {
		name  string
		rules []core.RateLimitRule
	}{
		{userRulesMigration, userRules(limits)},
		{ipRulesMigration, ipRules(limits)},
	} {
		if err := markIfApplied(app, set.name); err != nil {
			return err
		}
		var list core.MigrationsList
		list.Register(
			func(tx core.App) error {
				if done, err := installed(tx, set.name); err != nil || done {
					return err
				}
				if err := addRules(tx, set.rules); err != nil {
					return err
				}
				return markInstalled(tx, set.name)
			},
			func(tx core.App) error { return removeRules(tx, set.rules) },
			set.name,
		)
		if _, err := core.NewMigrationsRunner(app, list).Up(); err != nil {
			return fmt.Errorf("pbchat: rate limits: %w", err)
		}
	}
	return nil
}

// A set of rules is installed once per data dir. `migrate history-sync`
// deletes the _migrations rows of migrations it does not know (pbchat's are
// per app), so the mark is also kept in PocketBase's _params table, which it
// leaves alone: a rule an operator deleted is not added again.

func installedParam(name string) string { return "pbchat_installed_" + name }

func installed(app core.App, name string) (bool, error) {
	var n int
	err := app.DB().Select("count(*)").From("_params").Where(dbx.HashExp{"id": installedParam(name)}).Row(&n)
	if err != nil {
		return false, fmt.Errorf("pbchat: rate limits: read install mark: %w", err)
	}
	return n > 0, nil
}

func markInstalled(app core.App, name string) error {
	_, err := app.DB().NewQuery("INSERT OR IGNORE INTO _params (id, value) VALUES ({:id}, 'true')").
		Bind(dbx.Params{"id": installedParam(name)}).Execute()
	if err != nil {
		return fmt.Errorf("pbchat: rate limits: write install mark: %w", err)
	}
	return nil
}

// markIfApplied marks a set installed by a release that recorded it in
// _migrations only.
func markIfApplied(app core.App, name string) error {
	var n int
	err := app.DB().Select("count(*)").From(core.DefaultMigrationsTable).Where(dbx.HashExp{"file": name}).Row(&n)
	if err != nil {
		return fmt.Errorf("pbchat: rate limits: read migrations: %w", err)
	}
	if n == 0 {
		return nil
	}
	return markInstalled(app, name)
}

// addRules adds each of rules whose label no rule has yet.
func addRules(app core.App, rules []core.RateLimitRule) error {
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

// removeRules removes the rules with the labels of rules.
func removeRules(app core.App, rules []core.RateLimitRule) error {
	s, err := app.Settings().Clone()
	if err != nil {
		return err
	}
	s.RateLimits.Rules = slices.DeleteFunc(s.RateLimits.Rules, func(r core.RateLimitRule) bool {
		return slices.ContainsFunc(rules, func(ours core.RateLimitRule) bool { return ours.Label == r.Label })
	})
	return app.Save(s)
}
