// Package queryguard refuses client filters and sorts that would let a
// caller learn about chat rows they may not list.
//
// PocketBase applies a joined collection's list rule to the joins of the main
// query, but not to the "every row matches" subquery it adds for operators
// such as != and !~ over multi-valued paths, nor to @collection joins in that
// subquery; and it masks a hidden email in filters but not in sorts. Each of
// those turns a filter or sort on a record the caller may see into a yes/no
// question about rows they may not list. Rather than reason about each
// operator form, the guard refuses every path that enters a chat collection
// other than by a hop that cannot widen what the caller sees (a chat record
// to the record that contains it: a message to its room). docs/security.md
// has the whole argument.
package queryguard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ganigeorgiev/fexpr"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/pocketbase/pocketbase/tools/search"
	"github.com/spf13/cast"

	"github.com/pbchat/pbchat/internal/chat"
)

// containedIn lists the relations from a chat record to the chat record that
// contains it. Whoever may list the first may list the second (a member sees
// the room of a message they see), so following one reveals nothing new.
var containedIn = map[string][]string{
	chat.CollectionRoomUsers: {"room"},
	// A reply's parent and a thread's root are messages of the same room.
	chat.CollectionMessages:         {"room", "reply_to", "thread"},
	chat.CollectionMessageReactions: {"message"},
	chat.CollectionMessageMedia:     {"message", "media"},
	// Only the room's members holding can_remove_users list its bans.
	chat.CollectionRoomBans: {"room"},
	// Not chat_message_reports: a reporter who left still lists their reports.
}

// Refusal is a filter or sort path the caller may not use.
type Refusal struct {
	Param string // "filter" or "sort"
	Path  string
	Why   string
}

// Error names the parameter, the path and why it is refused.
func (r *Refusal) Error() string {
	return fmt.Sprintf("%s: %q %s", r.Param, r.Path, r.Why)
}

// APIError is the 400 PocketBase would answer for an invalid parameter,
// naming it.
func (r *Refusal) APIError() *router.ApiError {
	return router.NewBadRequestError(
		fmt.Sprintf("The %s path %q is not allowed: %s.", r.Param, r.Path, r.Why),
		validation.Errors{r.Param: validation.NewError("validation_forbidden_path", r.Why)},
	)
}

// Check reports whether a client-supplied filter and sort on collection may
// run for the caller (auth nil for guests). It returns nil when allowed and a
// *Refusal otherwise. Superusers are never refused. Filters that do not parse
// are left to PocketBase, which refuses them itself.
func Check(app core.App, collection *core.Collection, auth *core.Record, filter, sort string) error {
	if auth != nil && auth.IsSuperuser() {
		return nil
	}
	w := walker{app: app, base: collection, auth: auth}
	if filter != "" {
		if groups, err := fexpr.Parse(filter); err == nil {
			if err := w.groups("filter", groups); err != nil {
				return err
			}
		}
	}
	for _, field := range search.ParseSortFromString(sort) {
		if field.Name == "" || strings.HasPrefix(field.Name, "@random") || strings.HasPrefix(field.Name, "@rowid") {
			continue
		}
		if err := w.path("sort", field.Name); err != nil {
			return err
		}
	}
	return nil
}

// Bind refuses guarded paths in the records API's list filters and sorts and
// in the filters of realtime subscription options, for every collection of
// app (a host app's own collections included).
func Bind(app core.App) {
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.Bind(&hook.Handler[*core.RequestEvent]{
			Id:   "pbchatQueryGuard",
			Func: guardList,
		})
		return se.Next()
	})
	// Ahead of pbchat's own subscription handling, which takes chat
	// subscriptions out of the request.
	app.OnRealtimeSubscribeRequest().Bind(&hook.Handler[*core.RealtimeSubscribeRequestEvent]{
		Func:     guardSubscriptions,
		Priority: -10,
	})
}

// guardList checks GET /api/collections/{collection}/records.
func guardList(e *core.RequestEvent) error {
	if e.Request.Method != http.MethodGet {
		return e.Next()
	}
	name, ok := strings.CutPrefix(e.Request.URL.Path, "/api/collections/")
	if !ok {
		return e.Next()
	}
	name, ok = strings.CutSuffix(name, "/records")
	if !ok || name == "" || strings.Contains(name, "/") {
		return e.Next()
	}
	collection, err := e.App.FindCachedCollectionByNameOrId(name)
	if err != nil {
		return e.Next() // PocketBase answers 404 itself
	}
	query := e.Request.URL.Query()
	if err := Check(e.App, collection, e.Auth, query.Get("filter"), query.Get("sort")); err != nil {
		return apiError(err)
	}
	return e.Next()
}

// guardSubscriptions checks the filter option of every subscription.
func guardSubscriptions(e *core.RealtimeSubscribeRequestEvent) error {
	for _, sub := range e.Subscriptions {
		topic, filter := subscription(sub)
		if filter == "" {
			continue
		}
		collectionName, _, _ := strings.Cut(topic, "/")
		collection, err := e.App.FindCachedCollectionByNameOrId(collectionName)
		if err != nil {
			continue // a custom topic: no records behind it
		}
		if err := Check(e.App, collection, e.Auth, filter, ""); err != nil {
			return apiError(err)
		}
	}
	return e.Next()
}

func apiError(err error) error {
	if refusal, ok := err.(*Refusal); ok {
		return refusal.APIError()
	}
	return err
}

// walker follows filter and sort paths from a base collection.
type walker struct {
	app  core.App
	base *core.Collection
	auth *core.Record
}

func (w walker) groups(param string, groups []fexpr.ExprGroup) error {
	for _, group := range groups {
		switch item := group.Item.(type) {
		case fexpr.Expr:
			for _, token := range []fexpr.Token{item.Left, item.Right} {
				if err := w.token(param, token); err != nil {
					return err
				}
			}
		case fexpr.ExprGroup:
			if err := w.groups(param, []fexpr.ExprGroup{item}); err != nil {
				return err
			}
		case []fexpr.ExprGroup:
			if err := w.groups(param, item); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w walker) token(param string, token fexpr.Token) error {
	switch token.Type {
	case fexpr.TokenIdentifier:
		return w.path(param, token.Literal)
	case fexpr.TokenFunction:
		args, _ := token.Meta.([]fexpr.Token)
		for _, arg := range args {
			if err := w.token(param, arg); err != nil {
				return err
			}
		}
	}
	return nil
}

// path checks one field path such as "room.name",
// "chat_messages_via_user.text:lower" or "@collection.chat_rooms.name".
func (w walker) path(param, path string) error {
	props := strings.Split(path, ".")
	refuse := func(why string) error { return &Refusal{Param: param, Path: path, Why: why} }

	start := w.base
	switch {
	case props[0] == "@collection":
		if len(props) < 3 {
			return nil // PocketBase refuses it
		}
		name, _, _ := strings.Cut(props[1], ":")
		collection, err := w.app.FindCachedCollectionByNameOrId(name)
		if err != nil {
			return nil
		}
		if chat.IsGuarded(collection.Name) {
			return refuse("chat collections cannot be joined with @collection")
		}
		start, props = collection, props[2:]
	case props[0] == "@request":
		if len(props) < 3 {
			return nil
		}
		switch props[1] {
		case "auth":
			if w.auth == nil || len(props) == 3 {
				return nil // a plain field of the caller's own record
			}
			start, props = w.auth.Collection(), props[2:]
		case "body":
			props = props[2:]
		default:
			return nil // query, headers, method, context: values, not rows
		}
	case strings.HasPrefix(props[0], "@"):
		return nil // macros such as @now
	}
	return w.follow(start, props, param == "sort", refuse)
}

// follow walks props from collection, refusing hops into chat rows that
// the caller could not list, and hidden emails.
func (w walker) follow(collection *core.Collection, props []string, sorting bool, refuse func(string) error) error {
	for i, prop := range props {
		name, _, _ := strings.Cut(prop, ":")
		last := i == len(props)-1
		if last {
			if collection.Fields.GetByName(name) == nil {
				if back := w.backRelation(name); back != nil && chat.IsGuarded(back.Name) {
					return refuse("chat records cannot be reached through a back-relation")
				}
			}
			if name == core.FieldNameEmail && collection.IsAuth() && (sorting || i > 0) {
				return refuse("emails can be filtered only on their own collection, and never sorted by")
			}
			return nil
		}

		field := collection.Fields.GetByName(name)
		if field == nil {
			back := w.backRelation(name)
			if back == nil {
				return nil // PocketBase refuses unknown fields itself
			}
			if chat.IsGuarded(back.Name) {
				return refuse("chat records cannot be reached through a back-relation")
			}
			collection = back
			continue
		}
		switch field.Type() {
		case core.FieldTypeJSON, core.FieldTypeGeoPoint:
			return nil // the rest is a path inside the value
		case core.FieldTypeRelation:
		default:
			return nil // PocketBase refuses it
		}
		relation := field.(*core.RelationField)
		target, err := w.app.FindCachedCollectionByNameOrId(relation.CollectionId)
		if err != nil {
			return nil
		}
		// "rel.id" of a single relation is the stored id itself: no join.
		if !relation.IsMultiple() && i == len(props)-2 && props[i+1] == core.FieldNameId {
			return nil
		}
		if chat.IsGuarded(target.Name) && !slices.Contains(containedIn[collection.Name], relation.Name) {
			return refuse(fmt.Sprintf("%s can be reached only from the chat records it contains", target.Name))
		}
		collection = target
	}
	return nil
}

// backRelation resolves "collection_via_field" to its collection (nil when
// there is none).
func (w walker) backRelation(prop string) *core.Collection {
	// As PocketBase's ^(\w+)_via_(\w+)$: the collection is the longest prefix.
	idx := strings.LastIndex(prop, "_via_")
	if idx <= 0 {
		return nil
	}
	c, err := w.app.FindCachedCollectionByNameOrId(prop[:idx])
	if err != nil {
		return nil
	}
	return c
}

// subscription splits a subscription as PocketBase's client does: its topic
// and options.query.filter ("" when there is none).
func subscription(sub string) (topic, filter string) {
	u, err := url.Parse(sub)
	if err != nil {
		return sub, ""
	}
	var options struct {
		Query map[string]any `json:"query"`
	}
	if raw := u.Query().Get("options"); raw != "" {
		_ = json.Unmarshal([]byte(raw), &options) // PocketBase ignores options that do not parse
	}
	return u.Path, cast.ToString(options.Query["filter"])
}
