package hooks

import (
	"errors"
	"slices"
	"strings"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"github.com/pbchat/pbchat/migrations"
)

// MessageInsertHookID is the id of the OnRecordCreateExecute handler that
// writes a chat message's row with a prepared statement.
const MessageInsertHookID = "pbchat_message_insert"

// messageInsertPriority runs the handler after every other
// OnRecordCreateExecute handler (PocketBase's, which sets the autodate
// fields, is 99; an app's are 0 unless it says otherwise): it replaces only
// PocketBase's own INSERT at the end of the chain.
const messageInsertPriority = 1 << 20

// bindMessageInsert writes chat_messages rows itself: PocketBase builds,
// rewrites and prepares the INSERT of every record anew (~60–90 µs of a
// send's CPU, inside the write transaction that serialises every sender).
// The row is the one PocketBase would write (Record.DBExport, the same
// columns and values), through a statement prepared once per column set.
func bindMessageInsert(app core.App) {
	app.OnRecordCreateExecute(migrations.Messages).Bind(&hook.Handler[*core.RecordEvent]{
		Id:       MessageInsertHookID,
		Priority: messageInsertPriority,
		Func:     insertMessage,
	})
}

func insertMessage(e *core.RecordEvent) error {
	if sqlTxOf(e.App) == nil {
		return e.Next() // outside a transaction (no pbchat hook opened one): PocketBase's way
	}
	data, err := e.Record.DBExport(e.App)
	if err != nil {
		return err
	}
	if _, ok := data["id"]; !ok {
		data["id"] = e.Record.PK()
	}
	if id, _ := data["id"].(string); id == "" {
		return errors.New("empty primary key is not allowed when using the DBExporter interface")
	}
	columns := make([]string, 0, len(data))
	for column := range data {
		columns = append(columns, column)
	}
	slices.Sort(columns)
	args := make([]any, len(columns))
	for i, column := range columns {
		args[i] = data[column]
	}
	if _, err := execInTx(e.App, insertSQL(e.Record.Collection().Name, columns), args...); err != nil {
		return err
	}
	e.Record.MarkAsNotNew()
	return nil
}

// insertSQL is the INSERT of columns into table, with positional parameters.
func insertSQL(table string, columns []string) string {
	var b strings.Builder
	b.WriteString("INSERT INTO `" + table + "` (")
	for i, column := range columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("`" + column + "`")
	}
	b.WriteString(") VALUES (")
	b.WriteString(strings.Repeat("?, ", len(columns)-1))
	b.WriteString("?)")
	return b.String()
}
