package hooks

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/router"

	"github.com/pbchat/pbchat/migrations"
)

// EventLogHookID is the id of the model hooks (OnRecordCreate, OnRecordUpdate
// and OnRecordDelete) that append room changes to the event log. It is
// exported for benchmarks that measure what the log costs by unbinding them;
// an app without them serves sync from a log that misses changes.
const EventLogHookID = "pbchat_event_log"

// EventLogPruneJob is the id of the hourly cron job that deletes events
// older than Config.EventRetention.
const EventLogPruneJob = "pbchat_event_log_prune"

// eventLogPriority runs the log hooks after every other hook of the write
// (innermost): the log row goes in right after the record's own row, in the
// same transaction, whatever other hooks do around it.
const eventLogPriority = 1000

const insertEventSQL = `INSERT INTO ` + migrations.EventsTable +
	` (room, type, collection, action, record_id, member, message, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// cursor is a position in one database's event log: the epoch (which
// database, which run of it) and the seq of the last event before it.
type cursor struct {
	epoch string
	seq   int64
}

// String is the cursor as clients see it: "<epoch>.<seq>", "" for none.
func (c cursor) String() string {
	if c.epoch == "" {
		return ""
	}
	return c.epoch + "." + strconv.FormatInt(c.seq, 10)
}

// parseCursor reads "<epoch>.<seq>"; ok is false for anything else.
func parseCursor(s string) (c cursor, ok bool) {
	epoch, seq, found := strings.Cut(s, ".")
	if !found || epoch == "" {
		return cursor{}, false
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if err != nil || n < 0 {
		return cursor{}, false
	}
	return cursor{epoch: epoch, seq: n}, true
}

// epoch is this process's run of the log.
type epoch struct {
	id        string
	firstSeq  int64
	confirmed atomic.Bool // its row is committed
}

// eventLog appends every room change that has a realtime type to the event
// log, in the change's transaction, and hands each change's cursor to the
// realtime event that is published after the commit.
type eventLog struct {
	app core.App // outside any transaction

	// epoch begins with the first event this process writes, in that
	// event's transaction, at the next seq: every seq this process writes
	// is in an epoch only it uses. A restored backup or another database
	// does not know the epochs of cursors handed out since.
	epoch   atomic.Pointer[epoch]
	epochMu sync.Mutex

	// pending holds the cursors of written but not yet published changes,
	// in write order per record (a record saved twice in one transaction
	// has two), until the after-commit hook takes them or a rollback drops them.
	pendingMu sync.Mutex
	pending   map[*core.Record][]cursor

	// cascading holds the (transaction, room) pairs of rooms being deleted:
	// their messages and reactions go without a row each (room.deleted says it).
	cascading sync.Map

	// beforeDeletion holds, per room or message whose deletion has been
	// written ("collection/id"), the cursor just before its row: the cursor
	// of the stock events of what the deletion cascaded (a room's messages,
	// a message's reactions: they have no rows of their own), so that a
	// client resuming from one of them still gets the deletion.
	beforeDeletion sync.Map
}

type cascadeKey struct {
	tx   dbx.Builder
	room string
}

// logEntry is one row of the log.
type logEntry struct {
	room, typ, collection, action, recordID, member, message string
}

func newEventLog(app core.App) *eventLog {
	return &eventLog{app: app, pending: map[*core.Record][]cursor{}}
}

// bind attaches the log's model hooks to the collections that have event types.
func (l *eventLog) bind(app core.App) {
	collections := make([]string, 0, len(eventTypes))
	for _, name := range migrations.AllCollections {
		if eventTypes[name] != nil {
			collections = append(collections, name)
		}
	}
	app.OnRecordCreate(collections...).Bind(&hook.Handler[*core.RecordEvent]{Id: EventLogHookID, Priority: eventLogPriority, Func: l.created})
	app.OnRecordUpdate(collections...).Bind(&hook.Handler[*core.RecordEvent]{Id: EventLogHookID, Priority: eventLogPriority, Func: l.updated})
	app.OnRecordDelete(collections...).Bind(&hook.Handler[*core.RecordEvent]{Id: EventLogHookID, Priority: eventLogPriority, Func: l.deleted})
	// A rolled back write publishes nothing: its cursors go.
	drop := func(e *core.RecordErrorEvent) error {
		l.drop(e.Record)
		return e.Next()
	}
	app.OnRecordAfterCreateError(collections...).BindFunc(drop)
	app.OnRecordAfterUpdateError(collections...).BindFunc(drop)
	app.OnRecordAfterDeleteError(collections...).BindFunc(drop)
}

func (l *eventLog) created(e *core.RecordEvent) error { return l.save(e, "create") }
func (l *eventLog) updated(e *core.RecordEvent) error { return l.save(e, "update") }

func (l *eventLog) save(e *core.RecordEvent, action string) error {
	typ := eventTypes[e.Record.Collection().Name][action]
	if typ == "" {
		return e.Next() // a room's creation: its creator's member.joined says it
	}
	return inTransaction(e, func(tx core.App) error {
		if err := e.Next(); err != nil {
			return err
		}
		if action == "update" {
			if err := stillThere(tx, e.Record); err != nil {
				return err
			}
		}
		entry, ok, err := entryOf(tx, e.Record, typ, action)
		if err != nil || !ok {
			return err
		}
		c, err := l.append(tx, entry)
		if err != nil {
			return err
		}
		l.push(e.Record, c)
		return nil
	})
}

// stillThere fails an update whose record was deleted after the request
// loaded it: its UPDATE changed no row, and logging (and publishing) it
// would bring the record back after its deletion in every client's view.
func stillThere(tx core.App, record *core.Record) error {
	var n int
	err := queryRow(tx, "SELECT count(*) FROM `"+record.Collection().Name+"` WHERE id = ?", []any{record.Id}, &n)
	if err != nil {
		return fmt.Errorf("pbchat event log: %s %s: %w", record.Collection().Name, record.Id, err)
	}
	if n == 0 {
		return router.NewNotFoundError("The record was deleted while it was being updated.", nil)
	}
	return nil
}

// deleted logs a delete as a tombstone (id, room, type; the member of a
// membership, the message of a reaction). A room's deletion is logged
// before its cascade: room.deleted, then member.left for each of its
// members; its messages and reactions need no row. A reaction that goes with
// its message needs none either: message.deleted says it.
func (l *eventLog) deleted(e *core.RecordEvent) error {
	typ := eventTypes[e.Record.Collection().Name]["delete"]
	if typ == "" {
		return e.Next()
	}
	return inTransaction(e, func(tx core.App) error {
		if e.Record.Collection().Name == migrations.Rooms {
			return l.deleteRoom(e, tx, typ)
		}
		if err := e.Next(); err != nil {
			return err
		}
		entry, ok, err := entryOf(tx, e.Record, typ, "delete")
		if err != nil || !ok {
			return err
		}
		if entry.collection != migrations.RoomUsers {
			if _, cascade := l.cascading.Load(cascadeKey{tx.NonconcurrentDB(), entry.room}); cascade {
				return nil
			}
		}
		c, err := l.append(tx, entry)
		if err != nil {
			return err
		}
		if entry.collection == migrations.Messages {
			// Its reactions went before its row, in e.Next(), without rows.
			l.beforeDeletion.Store(deletionKey(entry.collection, entry.recordID), cursor{epoch: c.epoch, seq: c.seq - 1})
		}
		l.push(e.Record, c)
		return nil
	})
}

func (l *eventLog) deleteRoom(e *core.RecordEvent, tx core.App, typ string) error {
	roomID := e.Record.Id
	c, err := l.append(tx, logEntry{room: roomID, typ: typ, collection: migrations.Rooms, action: "delete", recordID: roomID})
	if err != nil {
		return err
	}
	l.beforeDeletion.Store(deletionKey(migrations.Rooms, roomID), cursor{epoch: c.epoch, seq: c.seq - 1})
	key := cascadeKey{tx.NonconcurrentDB(), roomID}
	l.cascading.Store(key, struct{}{})
	err = e.Next()
	l.cascading.Delete(key)
	if err != nil {
		return err
	}
	l.push(e.Record, c)
	return nil
}

// entryOf is the log row of a record change; ok is false when the change
// needs none (a reaction whose message is gone in the same transaction).
func entryOf(tx core.App, record *core.Record, typ, action string) (logEntry, bool, error) {
	entry := logEntry{typ: typ, collection: record.Collection().Name, action: action, recordID: record.Id}
	switch entry.collection {
	case migrations.Rooms:
		entry.room = record.Id
	case migrations.RoomUsers:
		entry.room, entry.member = record.GetString("room"), record.GetString("user")
	case migrations.MessageReacts:
		entry.message = record.GetString("message")
		var rooms []string
		err := tx.NonconcurrentDB().Select("room").From(migrations.Messages).
			Where(dbx.HashExp{"id": entry.message}).Column(&rooms)
		if err != nil {
			return entry, false, fmt.Errorf("pbchat event log: room of message %s: %w", entry.message, err)
		}
		if len(rooms) == 0 {
			return entry, false, nil
		}
		entry.room = rooms[0]
	default:
		entry.room = record.GetString("room")
	}
	return entry, entry.room != "", nil
}

// append writes one row in tx and returns its cursor.
func (l *eventLog) append(tx core.App, entry logEntry) (cursor, error) {
	epochID, err := l.ensureEpoch(tx)
	if err != nil {
		return cursor{}, err
	}
	res, err := l.insert(tx, entry)
	if err != nil {
		return cursor{}, fmt.Errorf("pbchat event log: append %s %s: %w", entry.typ, entry.recordID, err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return cursor{}, fmt.Errorf("pbchat event log: seq of %s %s: %w", entry.typ, entry.recordID, err)
	}
	return cursor{epoch: epochID, seq: seq}, nil
}

// insert runs the INSERT of entry in tx through a statement prepared once
// (a send is ~0.5 ms of CPU, and preparing the INSERT each time was a tenth
// of what the log adds to it).
func (l *eventLog) insert(tx core.App, entry logEntry) (sql.Result, error) {
	statements := statementsOf(l.app)
	statements.noteWriteDB(l.app) // the pool the statement is prepared on
	return statements.exec(tx, insertEventSQL,
		entry.room, entry.typ, entry.collection, entry.action, entry.recordID, entry.member, entry.message, time.Now().UnixMilli())
}

// ensureEpoch returns this process's epoch, beginning it in tx when it has
// none yet whose row is known to be committed. Writes are serialised (one
// write connection), so the next seq read here (the largest + 1) is the seq
// this transaction writes next.
func (l *eventLog) ensureEpoch(tx core.App) (string, error) {
	if ep := l.epoch.Load(); ep != nil && ep.confirmed.Load() {
		return ep.id, nil
	}
	l.epochMu.Lock()
	defer l.epochMu.Unlock()
	db := tx.NonconcurrentDB()
	if ep := l.epoch.Load(); ep != nil {
		if ep.confirmed.Load() {
			return ep.id, nil
		}
		// Begun by a transaction that may have rolled back since.
		var n int
		if err := db.Select("count(*)").From(migrations.EpochsTable).Where(dbx.HashExp{"epoch": ep.id}).Row(&n); err != nil {
			return "", fmt.Errorf("pbchat event log: epoch: %w", err)
		}
		if n > 0 {
			return ep.id, nil
		}
	}
	ep := &epoch{id: migrations.NewEpochID()}
	err := db.NewQuery(`SELECT coalesce((SELECT max(seq) FROM ` + migrations.EventsTable + `), 0) + 1`).Row(&ep.firstSeq)
	if err != nil {
		return "", fmt.Errorf("pbchat event log: next seq: %w", err)
	}
	_, err = db.Insert(migrations.EpochsTable, dbx.Params{"epoch": ep.id, "first_seq": ep.firstSeq}).Execute()
	if err != nil {
		return "", fmt.Errorf("pbchat event log: begin an epoch: %w", err)
	}
	l.epoch.Store(ep)
	if info := tx.TxInfo(); info != nil {
		info.OnComplete(func(txErr error) error {
			if txErr == nil {
				ep.confirmed.Store(true)
			}
			return nil
		})
	}
	return ep.id, nil
}

// firstSeq is the first seq of epoch id when it is this process's.
func (l *eventLog) firstSeq(id string) (int64, bool) {
	if ep := l.epoch.Load(); ep != nil && ep.id == id {
		return ep.firstSeq, true
	}
	return 0, false
}

func (l *eventLog) push(record *core.Record, c cursor) {
	l.pendingMu.Lock()
	l.pending[record] = append(l.pending[record], c)
	l.pendingMu.Unlock()
}

func deletionKey(collection, id string) string { return collection + "/" + id }

// cascadeCursor is the cursor of a stock event that the deletion of a room
// or a message (collection, id) cascaded ("" when there is none).
func (l *eventLog) cascadeCursor(collection, id string) cursor {
	if c, ok := l.beforeDeletion.Load(deletionKey(collection, id)); ok {
		return c.(cursor)
	}
	return cursor{}
}

// deletionDone forgets a deletion once its events are out (or it failed).
func (l *eventLog) deletionDone(collection, id string) {
	l.beforeDeletion.Delete(deletionKey(collection, id))
}

// pop takes the cursor of the record's oldest unpublished change (none: the zero cursor).
func (l *eventLog) pop(record *core.Record) cursor {
	l.pendingMu.Lock()
	defer l.pendingMu.Unlock()
	queue := l.pending[record]
	if len(queue) == 0 {
		return cursor{}
	}
	if len(queue) == 1 {
		delete(l.pending, record)
	} else {
		l.pending[record] = queue[1:]
	}
	return queue[0]
}

func (l *eventLog) drop(record *core.Record) {
	l.pendingMu.Lock()
	delete(l.pending, record)
	l.pendingMu.Unlock()
}

// pruneEventLog deletes the events older than retention, oldest first, in
// batches of one short write each. It only ever deletes a prefix of the log,
// so the log's first remaining seq tells which cursors can still be served,
// and never the newest row, so that no seq is handed out twice.
func pruneEventLog(app core.App, retention time.Duration) (int, error) {
	const batch = 5000
	cutoff := time.Now().Add(-retention).UnixMilli()
	deleted := 0
	for {
		var rows []struct {
			Seq     int64 `db:"seq"`
			Created int64 `db:"created"`
		}
		err := app.DB().Select("seq", "created").From(migrations.EventsTable).
			Where(dbx.NewExp("seq < (SELECT max(seq) FROM " + migrations.EventsTable + ")")).
			OrderBy("seq").Limit(batch).All(&rows)
		if err != nil {
			return deleted, fmt.Errorf("pbchat event log: oldest events: %w", err)
		}
		n := 0
		for n < len(rows) && rows[n].Created < cutoff {
			n++
		}
		if n == 0 {
			return deleted, nil
		}
		_, err = app.NonconcurrentDB().Delete(migrations.EventsTable, dbx.NewExp("seq <= {:seq}", dbx.Params{"seq": rows[n-1].Seq})).Execute()
		if err != nil {
			return deleted, fmt.Errorf("pbchat event log: prune: %w", err)
		}
		deleted += n
		if n < len(rows) || len(rows) < batch {
			return deleted, nil
		}
	}
}
