package hooks

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

const (
	// maxSearchQuery and maxSearchTerms bound what one search may ask.
	maxSearchQuery = 200
	maxSearchTerms = 8
	// minIndexedTerm is the shortest term the trigram index can find.
	minIndexedTerm = 3
	// shortSearchScan is how many of the newest messages of the caller's
	// rooms a search of short terms only (fewer than three characters each,
	// such as two Chinese characters) reads: the index cannot answer it, so
	// it is a bounded scan, not a search of the whole history.
	shortSearchScan = 20000
	// maxPendingSearch bounds the rows not yet in the full-text table that
	// a search reads; there are a handful unless the indexer is behind.
	maxPendingSearch = 5000
)

type search struct{ settings chat.Settings }

type searchItem struct {
	Message   *core.Record `json:"message"`
	Room      *core.Record `json:"room"`
	Highlight string       `json:"highlight"`
}

// searchHit is one message that matched, before its records are loaded.
type searchHit struct {
	message, room, highlight string
}

// search serves GET /api/chat/search: the messages of the caller's rooms
// that hold every term of q (a substring, case folded), newest first.
//
// It walks the full-text index newest first and keeps the rows of the
// caller's rooms, stopping once the page is full: it never joins all of the
// caller's messages and sorts them, so it costs the same for a user in two
// rooms or in hundreds. Counting every match would mean reading all of
// them; like PocketBase's skipTotal, totalItems and totalPages are -1, and
// hasMore says whether a next page has anything.
func (h search) search(e *core.RequestEvent) error {
	userID := authUserID(e, h.settings)
	query := e.Request.URL.Query()
	terms, err := searchTerms(e, query.Get("q"))
	if err != nil {
		return err
	}
	page, perPage, err := pagination(e)
	if err != nil {
		return err
	}
	roomID := query.Get("room")
	if query.Has("room") {
		// A room the caller is not a member of answers as one that does not
		// exist, public or not: the route tells nothing about rooms.
		membership, err := findMembership(e.App, roomID, userID)
		if err != nil {
			return err
		}
		if membership == nil {
			return e.NotFoundError("The room does not exist or you are not a member of it.", nil)
		}
	}

	response := map[string]any{
		"page":       page,
		"perPage":    perPage,
		"totalItems": -1,
		"totalPages": -1,
		"hasMore":    false,
		"items":      []searchItem{},
	}
	if page-1 > math.MaxInt/perPage {
		return e.JSON(http.StatusOK, response) // past any end
	}
	hits, more, err := findHits(e.App, userID, roomID, terms, (page-1)*perPage, perPage)
	if err != nil {
		return serverError(err)
	}
	items, err := searchItems(e, hits)
	if err != nil {
		return serverError(err)
	}
	response["hasMore"] = more
	response["items"] = items
	return e.JSON(http.StatusOK, response)
}

// searchTerms splits q at white space into its distinct terms, folded.
func searchTerms(e *core.RequestEvent, q string) ([]string, error) {
	invalid := func(message string) error {
		return e.BadRequestError("Invalid q.", fieldError("q", "invalid_q", message))
	}
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, invalid("q must hold something to search for")
	}
	if !utf8.ValidString(q) || utf8.RuneCountInString(q) > maxSearchQuery {
		return nil, invalid(fmt.Sprintf("q must be valid text of at most %d characters", maxSearchQuery))
	}
	var terms []string
	for _, field := range strings.FieldsFunc(q, unicode.IsSpace) {
		term := string(foldRunes(field))
		if !containsString(terms, term) {
			terms = append(terms, term)
		}
	}
	if len(terms) > maxSearchTerms {
		return nil, invalid(fmt.Sprintf("q may hold at most %d words", maxSearchTerms))
	}
	return terms, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// searchCandidate is a row that may match: its text is checked (and marked).
type searchCandidate struct {
	n                   int64
	message, room, text string
}

// findHits returns the hits from offset on, at most limit of them, and
// whether there are more.
//
// Terms of three characters or more go to the index (a phrase each, all
// required): FTS5 hands its rows in descending rowid order without sorting,
// the membership test is one lookup in the caller's rooms (read once), and
// the message is read only for the rows of the caller's rooms. The rows not
// yet in the full-text table (pending, see search_index.go) are read from
// the messages and merged in by number. Shorter terms, which the trigram
// index cannot find, are checked on the text; a search of short terms only
// reads the newest shortSearchScan messages of the caller's rooms.
func findHits(app core.App, userID, roomID string, terms []string, offset, limit int) ([]searchHit, bool, error) {
	q := buildSearchQuery(userID, roomID, terms)
	folded, params, sql := q.folded, q.params, q.sql
	var pending []searchCandidate
	if q.pendingSQL != "" {
		pendingRows, err := app.DB().NewQuery(q.pendingSQL).Bind(params).Rows()
		if err == nil {
			pending, err = scanCandidates(pendingRows)
		}
		if err != nil {
			return nil, false, fmt.Errorf("search the pending messages of %s: %w", userID, err)
		}
	}

	rows, err := app.DB().NewQuery(sql).Bind(params).Rows()
	if err != nil {
		return nil, false, fmt.Errorf("search the messages of %s: %w", userID, err)
	}
	defer rows.Close()
	stale := make(map[int64]bool, len(pending))
	for _, c := range pending {
		stale[c.n] = true // the index holds an older text, or none
	}
	var head *searchCandidate
	next := func() (*searchCandidate, error) {
		if head == nil {
			for rows.Next() {
				var c searchCandidate
				if err := rows.Scan(&c.n, &c.message, &c.room, &c.text); err != nil {
					return nil, err
				}
				if !stale[c.n] {
					head = &c
					break
				}
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
		if len(pending) > 0 && (head == nil || pending[0].n > head.n) {
			c := pending[0]
			pending = pending[1:]
			return &c, nil
		}
		c := head
		head = nil
		return c, nil
	}

	var hits []searchHit
	for {
		c, err := next()
		if err != nil {
			return nil, false, fmt.Errorf("search the messages of %s: %w", userID, err)
		}
		if c == nil {
			return hits, false, nil
		}
		snippet, ok := highlight(c.text, folded)
		if !ok {
			continue // a short term it does not hold, or an index row behind an edit
		}
		if offset > 0 {
			offset--
			continue
		}
		if len(hits) == limit {
			return hits, true, nil
		}
		hits = append(hits, searchHit{message: c.message, room: c.room, highlight: snippet})
	}
}

// searchQuery is a search's statements: sql reads the candidates newest
// first; pendingSQL (empty for a scan) the rows not yet in the full-text table.
type searchQuery struct {
	sql, pendingSQL string
	params          dbx.Params
	folded          [][]rune
}

func buildSearchQuery(userID, roomID string, terms []string) searchQuery {
	params := dbx.Params{"user": userID, "room": roomID}
	scope := `i.room IN (SELECT room FROM ` + migrations.RoomUsers + ` WHERE user = {:user})`
	if roomID != "" {
		scope = `i.room = {:room} AND EXISTS (SELECT 1 FROM ` + migrations.RoomUsers + ` WHERE room = {:room} AND user = {:user})`
	}
	var phrases, likes []string
	folded := make([][]rune, len(terms))
	for k, term := range terms {
		folded[k] = []rune(term)
		if len(folded[k]) >= minIndexedTerm {
			phrases = append(phrases, `"`+strings.ReplaceAll(term, `"`, `""`)+`"`)
		} else if likeSafe(term) {
			name := fmt.Sprintf("like%d", k)
			params[name] = "%" + escapeLike(term) + "%"
			likes = append(likes, `m.text LIKE {:`+name+`} ESCAPE '\'`)
		}
	}
	q := searchQuery{params: params, folded: folded}
	if len(phrases) > 0 {
		params["match"] = strings.Join(phrases, " AND ")
		params["pending"] = maxPendingSearch
		q.pendingSQL = `SELECT p.n, i.message, i.room, m.text
			FROM ` + migrations.SearchPendingTable + ` p
			JOIN ` + migrations.SearchIDsTable + ` i ON i.n = p.n
			JOIN ` + migrations.Messages + ` m ON m.id = i.message
			WHERE ` + scope + `
			ORDER BY p.n DESC LIMIT {:pending}`
		q.sql = `SELECT s.rowid, i.message, i.room, m.text
			FROM ` + migrations.SearchTable + ` s
			JOIN ` + migrations.SearchIDsTable + ` i ON i.n = s.rowid
			JOIN ` + migrations.Messages + ` m ON m.id = i.message
			WHERE s.` + migrations.SearchTable + ` MATCH {:match} AND ` + scope + `
			ORDER BY s.rowid DESC`
		return q
	}
	params["scan"] = shortSearchScan
	where := ""
	if len(likes) > 0 {
		where = " WHERE " + strings.Join(likes, " AND ")
	}
	q.sql = `SELECT i.n, i.message, i.room, m.text
		FROM (SELECT n, message, room FROM ` + migrations.SearchIDsTable + ` i
		      WHERE ` + scope + ` ORDER BY n DESC LIMIT {:scan}) i
		JOIN ` + migrations.Messages + ` m ON m.id = i.message` + where + `
		ORDER BY i.n DESC`
	return q
}

func scanCandidates(rows *dbx.Rows) ([]searchCandidate, error) {
	defer rows.Close()
	var out []searchCandidate
	for rows.Next() {
		var c searchCandidate
		if err := rows.Scan(&c.n, &c.message, &c.room, &c.text); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// likeSafe reports whether SQLite's LIKE, which folds the case of ASCII
// letters only, finds every text that holds term under the index's folding.
func likeSafe(term string) bool {
	for _, r := range term {
		if r >= utf8.RuneSelf && unicode.SimpleFold(r) != r {
			return false
		}
	}
	return true
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// searchItems loads the hits' messages and rooms as the records API
// returns them; a message deleted since the search is left out.
func searchItems(e *core.RequestEvent, hits []searchHit) ([]searchItem, error) {
	messageIDs := make([]string, 0, len(hits))
	roomIDs := make([]string, 0, len(hits))
	for _, hit := range hits {
		messageIDs = append(messageIDs, hit.message)
		if !containsString(roomIDs, hit.room) {
			roomIDs = append(roomIDs, hit.room)
		}
	}
	messages, err := recordsByID(e, migrations.Messages, messageIDs)
	if err != nil {
		return nil, err
	}
	rooms, err := recordsByID(e, migrations.Rooms, roomIDs)
	if err != nil {
		return nil, err
	}
	items := make([]searchItem, 0, len(hits))
	for _, hit := range hits {
		message, room := messages[hit.message], rooms[hit.room]
		if message == nil || room == nil {
			continue
		}
		items = append(items, searchItem{Message: message, Room: room, Highlight: hit.highlight})
	}
	return items, nil
}
