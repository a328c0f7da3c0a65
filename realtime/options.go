package realtime

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/picker"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/pocketbase/pocketbase/tools/search"
	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/queryguard"
)

// Stock subscriptions to the chat collections with filter, expand or fields
// options are served by the hub like those without: only the room's
// connected members get an event. For each such subscriber the hub then does
// what PocketBase's broadcaster does (apis/realtime.go): the client-side
// filter as one SQL query on the record, expand with the related
// collections' view rules for that user, and fields. The collection's own
// list/view rule is implied by membership. That work needs the database, so
// it runs on the writer only, in the client's pump goroutine (in order with
// the client's other events), never under the hub's lock nor on the
// publisher's goroutine. Guests' chat subscriptions are dropped whatever
// their options: a guest can never see a chat record.

const (
	expandParam = "expand"
	fieldsParam = "fields"
)

// optionParams are the options that change what a stock subscription delivers.
var optionParams = []string{search.FilterQueryParam, expandParam, fieldsParam}

// superuserOnlyFilterFields are what PocketBase lets only superusers use in a
// filter or sort (apis/record_helpers.go): its broadcaster then delivers nothing.
var superuserOnlyFilterFields = []string{"@collection.", "@request."}

// subOptions are a chat user's options on one stock subscription.
type subOptions struct {
	app     core.App
	user    string // the subscriber's id: events render only while the connection is still theirs
	query   map[string]string
	headers map[string]string
}

// queued is a message in a client's outbox. A subscription with options
// queues render instead of a ready message: it needs the database, so the
// client's pump runs it just before sending, in order with the rest.
type queued struct {
	subscriptions.Message
	render func() (subscriptions.Message, bool)
}

// resolve returns the message to send, and false when there is none (the
// record did not pass the subscription's filter).
func (q queued) resolve() (subscriptions.Message, bool) {
	if q.render == nil {
		return q.Message, true
	}
	return q.render()
}

// pocketBaseOptions parses a subscription's options exactly as PocketBase's
// realtime client does (malformed options count as none).
func pocketBaseOptions(sub string) subscriptions.SubscriptionOptions {
	parser := subscriptions.NewDefaultClient()
	parser.Subscribe(sub)
	return parser.Subscriptions()[sub]
}

func hasOptions(options subscriptions.SubscriptionOptions) bool {
	for _, param := range optionParams {
		if options.Query[param] != "" {
			return true
		}
	}
	return false
}

// stockOptions returns the options of a chat user's stock subscription to
// collection, nil when it has none that change what is delivered. A filter
// the query guard refuses fails the subscribe request with a 400 naming
// subscriptions.
func stockOptions(e *core.RequestEvent, collection, sub string) (*subOptions, error) {
	options := pocketBaseOptions(sub)
	if !hasOptions(options) {
		return nil, nil
	}
	if filter := options.Query[search.FilterQueryParam]; filter != "" {
		c, err := e.App.FindCachedCollectionByNameOrId(collection)
		if err != nil {
			return nil, fmt.Errorf("pbchat realtime: collection %s: %w", collection, err)
		}
		if err := queryguard.Check(e.App, c, e.Auth, filter, ""); err != nil {
			return nil, router.NewBadRequestError(fmt.Sprintf("The filter of subscription %q is not allowed: %v.", sub, err),
				validation.Errors{"subscriptions": validation.NewError("validation_forbidden_filter", err.Error())})
		}
	}
	return &subOptions{app: e.App, user: e.Auth.Id, query: options.Query, headers: options.Headers}, nil
}

// refuseNodeOptions refuses chat subscriptions with options on behalf of a
// realtime node: it holds no database to evaluate them with.
func refuseNodeOptions(app core.App, subs []string) error {
	for _, sub := range subs {
		topic, _ := parseSubscription(sub)
		if collection, _ := chatCollection(app, topic); collection != "" && hasOptions(pocketBaseOptions(sub)) {
			return router.NewBadRequestError("Subscriptions with filter/expand/fields options need the writer's /api/realtime.",
				validation.Errors{"subscriptions": validation.NewError("validation_options_need_writer",
					fmt.Sprintf("%q: filter/expand/fields options need the writer's /api/realtime", sub))})
		}
	}
	return nil
}

// queue returns ev for subscription name as a message the pump renders.
func (o *subOptions) queue(pb subscriptions.Client, name string, ev chat.Event) queued {
	return queued{
		Message: subscriptions.Message{Name: name},
		render:  func() (subscriptions.Message, bool) { return o.render(pb, name, ev) },
	}
}

// render builds ev's message as PocketBase's broadcaster would for this
// subscription; false when nothing is to be sent.
func (o *subOptions) render(pb subscriptions.Client, name string, ev chat.Event) (subscriptions.Message, bool) {
	logger := o.app.Logger().With(slog.String("sub", name), slog.String("id", ev.RecordID))
	// The connection's current auth, as PocketBase keeps it (a changed token
	// key unsets it): nothing for a connection that is no longer the user's.
	auth, _ := pb.Get(apis.RealtimeClientAuthKey).(*core.Record)
	if auth == nil || auth.Id != o.user {
		return subscriptions.Message{}, false
	}
	collection, err := o.app.FindCachedCollectionByNameOrId(ev.Collection)
	if err != nil {
		logger.Warn("pbchat realtime: collection of an event", slog.Any("error", err))
		return subscriptions.Message{}, false
	}
	record := core.NewRecord(collection)
	if err := json.Unmarshal(ev.Record, record); err != nil {
		logger.Warn("pbchat realtime: decode an event's record", slog.Any("error", err))
		return subscriptions.Message{}, false
	}
	info := &core.RequestInfo{
		Context: core.RequestInfoContextRealtime,
		Method:  "GET",
		Query:   o.query,
		Headers: o.headers,
		Auth:    auth,
	}

	ok, err := o.matches(record, info)
	if err != nil {
		logger.Warn("pbchat realtime: subscription filter", slog.Any("error", err))
	}
	if !ok {
		return subscriptions.Message{}, false
	}
	if expand := o.query[expandParam]; expand != "" {
		if failed := o.app.ExpandRecord(record, strings.Split(expand, ","), expandFetch(o.app, info)); len(failed) > 0 {
			logger.Debug("pbchat realtime: expand", slog.String("expand", expand), slog.Any("errors", failed))
		}
	}
	payload := map[string]any{"action": ev.Action, "record": record}
	if ev.Cursor != "" {
		payload["cursor"] = ev.Cursor
	}
	if fields := o.query[fieldsParam]; fields != "" {
		picked, err := picker.Pick(record, fields)
		if err != nil {
			logger.Debug("pbchat realtime: fields", slog.String("fields", fields), slog.Any("error", err))
		} else {
			payload["record"] = picked
		}
	}
	data, err := json.Marshal(payload)
	if err != nil {
		logger.Warn("pbchat realtime: encode an event", slog.Any("error", err))
		return subscriptions.Message{}, false
	}
	return subscriptions.Message{Name: name, Data: data}, true
}

// matches runs the subscription's filter on the record as PocketBase's
// realtimeCanAccessRecord does: SELECT 1 WHERE id = ? AND (filter). The
// record's own columns are the event's (a derived table named as the
// collection), so the filter sees the record as it was written, as PocketBase
// does when it decides synchronously, and a delete is filtered too although
// its row is gone. Relations are read as they are now. A filter that does not
// build matches nothing, as in PocketBase.
func (o *subOptions) matches(record *core.Record, info *core.RequestInfo) (bool, error) {
	filter := info.Query[search.FilterQueryParam]
	if filter == "" {
		return true, nil
	}
	for _, param := range []string{search.FilterQueryParam, search.SortQueryParam} {
		if v := info.Query[param]; slices.ContainsFunc(superuserOnlyFilterFields, func(f string) bool { return strings.Contains(v, f) }) {
			return false, nil
		}
	}
	db := o.app.ConcurrentDB()
	columns, err := record.DBExport(o.app)
	if err != nil {
		return false, fmt.Errorf("columns of %s: %w", record.Id, err)
	}
	selects := make([]string, 0, len(columns))
	params := make(dbx.Params, len(columns))
	for column, value := range columns {
		name := fmt.Sprintf("pbchatColumn%d", len(selects))
		selects = append(selects, "{:"+name+"} AS "+db.QuoteSimpleColumnName(column))
		params[name] = value
	}
	table := record.Collection().Name
	q := db.Select("(1)").
		From("(SELECT " + strings.Join(selects, ", ") + ") " + table).
		Bind(params)
	resolver := core.NewRecordFieldResolver(o.app, record.Collection(), info, false)
	expr, err := search.FilterData(filter).BuildExpr(resolver)
	if err != nil {
		return false, nil // an invalid filter: PocketBase delivers nothing either
	}
	q.AndWhere(expr)
	if err := resolver.UpdateQuery(q); err != nil {
		return false, nil
	}
	var exists int
	if err := q.Limit(1).Row(&exists); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return false, fmt.Errorf("filter %q on %s %s: %w", filter, table, record.Id, err)
	}
	return exists > 0, nil
}

// expandFetch fetches related records for expand as PocketBase's records API
// does (apis.expandFetch, unexported): the related collection's view rule
// for this user, the enrich hooks, and email visibility for auth records.
func expandFetch(app core.App, original *core.RequestInfo) core.ExpandFetchFunc {
	info := *original
	info.Context = core.RequestInfoContextExpand
	return func(relCollection *core.Collection, relIDs []string) ([]*core.Record, error) {
		records, err := app.FindRecordsByIds(relCollection.Id, relIDs, func(q *dbx.SelectQuery) error {
			if relCollection.ViewRule == nil {
				return fmt.Errorf("only superusers can view collection %q records", relCollection.Name)
			}
			if *relCollection.ViewRule == "" {
				return nil
			}
			resolver := core.NewRecordFieldResolver(app, relCollection, &info, true)
			expr, err := search.FilterData(*relCollection.ViewRule).BuildExpr(resolver)
			if err != nil {
				return err
			}
			q.AndWhere(expr)
			return resolver.UpdateQuery(q)
		})
		if err != nil {
			return nil, err
		}
		for _, record := range records {
			event := &core.RecordEnrichEvent{App: app, RequestInfo: &info}
			event.Record = record
			if err := app.OnRecordEnrich().Trigger(event); err != nil {
				return nil, err
			}
		}
		if err := showEmails(app, records, &info); err != nil {
			app.Logger().Warn("pbchat realtime: email visibility of expanded records", slog.Any("error", err))
		}
		return records, nil
	}
}

// showEmails lets the owner, and whoever the collection's manage rule
// allows, see an expanded auth record's email (apis.autoResolveRecordsFlags).
func showEmails(app core.App, records []*core.Record, info *core.RequestInfo) error {
	if len(records) == 0 || !records[0].Collection().IsAuth() {
		return nil
	}
	collection := records[0].Collection()
	byID := make(map[string]*core.Record, len(records))
	ids := make([]any, len(records))
	for i, record := range records {
		byID[record.Id], ids[i] = record, record.Id
		if info.Auth != nil && info.Auth.Id == record.Id && info.Auth.Collection().Id == collection.Id {
			record.IgnoreEmailVisibility(true)
		}
	}
	if collection.ManageRule == nil || *collection.ManageRule == "" {
		return nil
	}
	column := app.ConcurrentDB().QuoteSimpleColumnName(collection.Name) + ".id"
	q := app.RecordQuery(collection).Select(column).AndWhere(dbx.In(column, ids...))
	resolver := core.NewRecordFieldResolver(app, collection, info, true)
	expr, err := search.FilterData(*collection.ManageRule).BuildExpr(resolver)
	if err != nil {
		return err
	}
	q.AndWhere(expr)
	if err := resolver.UpdateQuery(q); err != nil {
		return err
	}
	var managed []string
	if err := q.Column(&managed); err != nil {
		return err
	}
	for _, id := range managed {
		byID[id].IgnoreEmailVisibility(true)
	}
	return nil
}
