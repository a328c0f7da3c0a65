package hooks

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/dbutils"
	"github.com/pocketbase/pocketbase/tools/hook"
	pbsearch "github.com/pocketbase/pocketbase/tools/search"

	"github.com/pbchat/pbchat/migrations"
)

// A history page expands each message's attachments and reactions
// (chat_message_media_via_message.media, chat_message_reactions_via_message).
// PocketBase reads a back-relation with one query per listed record (50
// queries per relation for a page of 50); pprof put them at a sixth of the
// page's CPU. bindHistoryExpand reads them with one query per relation and
// leaves the rest as PocketBase does it: the same view rules (a filter of
// the query that loads the related records, or answered by the list rule
// already: overview_history_rules.go), the same enrich hooks in the expand
// context, the same order and the same JSON.
func bindHistoryExpand(app core.App) {
	app.OnRecordsListRequest(migrations.Messages).Bind(&hook.Handler[*core.RecordsListRequestEvent]{
		Id: "pbchatHistoryExpand",
		// After every other handler: they see the request as it came.
		Priority: math.MaxInt32,
		Func:     expandBackRelations,
	})
}

// backRelationExpand matches PocketBase's back-relation expand syntax.
var backRelationExpand = regexp.MustCompile(`^(\w+)_via_(\w+)$`)

// backRelationLimit is PocketBase's cap on the ids of one record's back-relation.
const backRelationLimit = 1000

// backRelation is one expand path pbchat reads itself: a back-relation of
// the listed collection and at most one relation of it expanded in turn.
type backRelation struct {
	key      string // "chat_message_reactions_via_message"
	related  *core.Collection
	field    string // the related collection's relation to the listed records
	single   bool   // a unique index on field: at most one related record
	nested   *core.RelationField
	nestedTo *core.Collection
	// The view rules the list rule answers already (overview_history_rules.go).
	implied, nestedImplied bool
}

// expandBackRelations expands the back-relations it can read in one query
// and hands the rest of the expand parameter on to PocketBase. Superusers,
// who see hidden fields, and any path it does not know, go PocketBase's way.
func expandBackRelations(e *core.RecordsListRequestEvent) error {
	if len(e.Records) == 0 || e.HasSuperuserAuth() {
		return e.Next()
	}
	info, err := e.RequestInfo()
	if err != nil {
		return err // as PocketBase's list answers it
	}
	param := info.Query["expand"]
	if param == "" {
		return e.Next()
	}
	relations, rest := planBackRelations(e.App, e.Collection, strings.Split(param, ","))
	if len(relations) == 0 {
		return e.Next()
	}
	expandInfo := *info
	expandInfo.Context = core.RequestInfoContextExpand
	results := make([]map[string][]*core.Record, len(relations))
	ids := make([]map[string][]string, len(relations))
	for i, relation := range relations {
		if ids[i], results[i], err = relation.read(e.App, &expandInfo, e.Records); err != nil {
			// PocketBase's own way then, which answers without what fails.
			e.App.Logger().Warn("pbchat: history expand left to PocketBase", "expand", param, "error", err)
			return e.Next()
		}
	}

	for _, record := range e.Records {
		// As PocketBase does for every record once anything is expanded.
		record.SetExpand(record.Expand())
	}
	for i, relation := range relations {
		for _, record := range e.Records {
			if recordIDs := ids[i][record.Id]; len(recordIDs) > 0 {
				record.Set(relation.key, recordIDs)
			}
			related := results[i][record.Id]
			if len(related) == 0 {
				continue
			}
			expand := record.Expand()
			if relation.single {
				expand[relation.key] = related[0]
			} else {
				expand[relation.key] = related
			}
			record.SetExpand(expand)
		}
	}

	info.Query["expand"] = strings.Join(rest, ",")
	defer func() { info.Query["expand"] = param }()
	return e.Next()
}

// planBackRelations splits expand paths into the back-relations read here
// and the paths left to PocketBase. A back-relation is read here when every
// path starting with it goes at most one relation further, to a collection
// that is not an auth collection, and both collections have a view rule
// (PocketBase expands nothing for a non-superuser otherwise).
func planBackRelations(app core.App, listed *core.Collection, paths []string) ([]backRelation, []string) {
	groups := map[string][]string{} // first segment: the rest of each path
	var order []string
	for _, path := range paths {
		path = strings.TrimSpace(path)
		if path == "" {
			continue
		}
		first, rest, _ := strings.Cut(path, ".")
		if _, seen := groups[first]; !seen {
			order = append(order, first)
		}
		groups[first] = append(groups[first], rest)
	}
	var relations []backRelation
	var left []string
	for _, first := range order {
		relation, ok := planBackRelation(app, listed, first, groups[first])
		if ok {
			relations = append(relations, relation)
			continue
		}
		for _, rest := range groups[first] {
			if rest == "" {
				left = append(left, first)
			} else {
				left = append(left, first+"."+rest)
			}
		}
	}
	return relations, left
}

func planBackRelation(app core.App, listed *core.Collection, first string, rests []string) (backRelation, bool) {
	m := backRelationExpand.FindStringSubmatch(first)
	if m == nil {
		return backRelation{}, false
	}
	related, err := app.FindCachedCollectionByNameOrId(m[1])
	if err != nil || related.IsAuth() || related.ViewRule == nil {
		return backRelation{}, false
	}
	field, ok := related.Fields.GetByName(m[2]).(*core.RelationField)
	if !ok || field.CollectionId != listed.Id || field.IsMultiple() {
		return backRelation{}, false
	}
	_, single := dbutils.FindSingleColumnUniqueIndex(related.Indexes, field.Name)
	relation := backRelation{key: first, related: related, field: field.Name, single: single}
	for _, rest := range rests {
		if rest == "" {
			continue
		}
		if strings.Contains(rest, ".") || (relation.nested != nil && relation.nested.Name != rest) {
			return backRelation{}, false
		}
		nested, ok := related.Fields.GetByName(rest).(*core.RelationField)
		if !ok {
			return backRelation{}, false
		}
		to, err := app.FindCachedCollectionByNameOrId(nested.CollectionId)
		if err != nil || to.IsAuth() || to.ViewRule == nil {
			return backRelation{}, false
		}
		relation.nested, relation.nestedTo = nested, to
	}
	relation.implied = viewImpliedByList(listed, related, field.Name)
	relation.nestedImplied = relation.implied && relation.nested != nil &&
		nestedViewImplied(listed, related, field.Name, relation.nested, relation.nestedTo)
	return relation, true
}

// read returns, per listed record, the ids of its related records (as
// PocketBase reads them: index order, at most backRelationLimit) and those
// of them the caller may view, in that order, their nested relation expanded.
func (b backRelation) read(app core.App, info *core.RequestInfo, records []*core.Record) (map[string][]string, map[string][]*core.Record, error) {
	listedIDs := make([]any, len(records))
	for i, r := range records {
		listedIDs[i] = r.Id
	}
	ids := make(map[string][]string, len(records))
	var related []*core.Record
	var err error
	// The same index PocketBase's one query per record uses ((message, …)),
	// so each record's ids come in the same order.
	if b.implied {
		// The rows themselves: no view rule to filter them by.
		err = app.RecordQuery(b.related).AndWhere(dbx.In(b.related.Name+"."+b.field, listedIDs...)).All(&related)
		if err != nil {
			return nil, nil, fmt.Errorf("expand %s: %w", b.key, err)
		}
		kept := related[:0]
		for _, r := range related {
			if owner := r.GetString(b.field); len(ids[owner]) < backRelationLimit {
				ids[owner] = append(ids[owner], r.Id)
				kept = append(kept, r)
			}
		}
		related = kept
		if err := enrichExpanded(app, info, related); err != nil {
			return nil, nil, fmt.Errorf("expand %s: %w", b.key, err)
		}
	} else {
		var pairs []struct {
			Owner string `db:"owner"`
			ID    string `db:"id"`
		}
		err = app.ConcurrentDB().Select("[["+b.field+"]] AS owner", "id").From(b.related.Name).
			Where(dbx.In(b.field, listedIDs...)).All(&pairs)
		if err != nil {
			return nil, nil, fmt.Errorf("expand %s: %w", b.key, err)
		}
		var relatedIDs []string
		for _, p := range pairs {
			if len(ids[p.Owner]) < backRelationLimit {
				ids[p.Owner] = append(ids[p.Owner], p.ID)
				relatedIDs = append(relatedIDs, p.ID)
			}
		}
		if related, err = viewable(app, info, b.related, relatedIDs, false); err != nil {
			return nil, nil, err
		}
	}
	if b.nested != nil {
		if err := b.expandNested(app, info, related); err != nil {
			return nil, nil, err
		}
	}
	byID := make(map[string]*core.Record, len(related))
	for _, r := range related {
		byID[r.Id] = r
	}
	out := make(map[string][]*core.Record, len(records))
	for owner, list := range ids {
		for _, id := range list {
			if r, ok := byID[id]; ok {
				out[owner] = append(out[owner], r)
			}
		}
	}
	return ids, out, nil
}

// expandNested expands b.nested on the related records, as PocketBase's
// nested expand does: every one of them gets an expand, empty or not.
func (b backRelation) expandNested(app core.App, info *core.RequestInfo, related []*core.Record) error {
	if len(related) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var targetIDs []string
	for _, r := range related {
		for _, id := range r.GetStringSlice(b.nested.Name) {
			if !seen[id] {
				seen[id] = true
				targetIDs = append(targetIDs, id)
			}
		}
	}
	targets, err := viewable(app, info, b.nestedTo, targetIDs, b.nestedImplied)
	if err != nil {
		return err
	}
	byID := make(map[string]*core.Record, len(targets))
	for _, t := range targets {
		byID[t.Id] = t
	}
	for _, r := range related {
		r.SetExpand(r.Expand())
		var valid []*core.Record
		for _, id := range r.GetStringSlice(b.nested.Name) {
			if t, ok := byID[id]; ok {
				valid = append(valid, t)
			}
		}
		if len(valid) == 0 {
			continue
		}
		expand := r.Expand()
		if b.nested.IsMultiple() {
			expand[b.nested.Name] = valid
		} else {
			expand[b.nested.Name] = valid[0]
		}
		r.SetExpand(expand)
	}
	return nil
}

// viewable loads the records of c with ids that pass c's view rule for the
// caller (known to, when implied) and runs the enrich hooks on them:
// PocketBase's expand fetch.
func viewable(app core.App, info *core.RequestInfo, c *core.Collection, ids []string, implied bool) ([]*core.Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	records, err := app.FindRecordsByIds(c.Id, ids, func(q *dbx.SelectQuery) error {
		if implied || *c.ViewRule == "" {
			return nil
		}
		resolver := core.NewRecordFieldResolver(app, c, info, true)
		expr, err := pbsearch.FilterData(*c.ViewRule).BuildExpr(resolver)
		if err != nil {
			return err
		}
		q.AndWhere(expr)
		return resolver.UpdateQuery(q)
	})
	if err != nil {
		return nil, fmt.Errorf("expand %s: %w", c.Name, err)
	}
	if err := enrichExpanded(app, info, records); err != nil {
		return nil, fmt.Errorf("expand %s: %w", c.Name, err)
	}
	return records, nil
}

// enrichExpanded triggers the enrich hooks on records one inside the other,
// as PocketBase does for expanded records.
func enrichExpanded(app core.App, info *core.RequestInfo, records []*core.Record) error {
	if len(records) == 0 {
		return nil
	}
	event := new(core.RecordEnrichEvent)
	event.App = app
	event.RequestInfo = info
	var iterate func(i int) error
	iterate = func(i int) error {
		event.Record = records[i]
		return app.OnRecordEnrich().Trigger(event, func(ee *core.RecordEnrichEvent) error {
			if i+1 == len(records) {
				return nil
			}
			event.App = ee.App // in case a hook runs the rest in a transaction
			err := iterate(i + 1)
			event.App = app
			event.Record = records[i]
			return err
		})
	}
	return iterate(0)
}
