package hooks_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/filesystem"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chattest"
)

// orphanWorld is an app with a user in a group and n uploads of theirs
// that no message uses, created two hours ago (the oldest first).
type orphanWorld struct {
	env   *chattest.Env
	user  *chattest.User
	room  string
	media []string
	ttl   time.Duration
}

func newOrphanWorld(t *testing.T, n int) *orphanWorld {
	t.Helper()
	env := chattest.New(t, chatmodule.Config{})
	w := &orphanWorld{env: env, user: env.NewUser("alice"), ttl: time.Hour}
	rooms, err := env.App.FindCollectionByNameOrId("chat_rooms")
	if err != nil {
		t.Fatal(err)
	}
	room := core.NewRecord(rooms)
	room.Set("type", "group")
	room.Set("created_by", w.user.ID())
	if err := env.App.Save(room); err != nil {
		t.Fatal(err)
	}
	w.room = room.Id
	media, err := env.App.FindCollectionByNameOrId("chat_media")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		record := core.NewRecord(media)
		file, err := filesystem.NewFileFromBytes([]byte("note"), "note.txt")
		if err != nil {
			t.Fatal(err)
		}
		record.Set("file", file)
		record.Set("uploaded_by", w.user.ID())
		if err := env.App.Save(record); err != nil {
			t.Fatal(err)
		}
		created := types.NowDateTime().Add(-2*time.Hour + time.Duration(i)*time.Minute)
		if _, err := env.App.DB().Update("chat_media", dbx.Params{"created": created.String()}, dbx.HashExp{"id": record.Id}).Execute(); err != nil {
			t.Fatal(err)
		}
		w.media = append(w.media, record.Id)
	}
	return w
}

// onDelete runs fn when one of the chat_media records is about to be deleted
// (inside whatever transaction deletes it).
func (w *orphanWorld) onDelete(fn func(e *core.RecordEvent) error) {
	w.env.App.OnRecordDelete("chat_media").Bind(&hook.Handler[*core.RecordEvent]{
		Priority: -1,
		Func: func(e *core.RecordEvent) error {
			if err := fn(e); err != nil {
				return err
			}
			return e.Next()
		},
	})
}

func (w *orphanWorld) exists(t *testing.T, collection, filter string, params dbx.Params) bool {
	t.Helper()
	records, err := w.env.App.FindRecordsByFilter(collection, filter, "", 0, 0, params)
	if err != nil {
		t.Fatal(err)
	}
	return len(records) > 0
}

// Media attached between the job's look-up and its deletion is no orphan:
// it stays, and so does the message's attachment.
func TestOrphanMediaAttachedMeanwhileIsKept(t *testing.T) {
	w := newOrphanWorld(t, 2)
	first, second := w.media[0], w.media[1]
	var message string
	w.onDelete(func(e *core.RecordEvent) error {
		if e.Record.Id != first || message != "" {
			return nil
		}
		// Another writer attaches the second upload meanwhile.
		messages, err := e.App.FindCollectionByNameOrId("chat_messages")
		if err != nil {
			return err
		}
		record := core.NewRecord(messages)
		record.Set("room", w.room)
		record.Set("user", w.user.ID())
		record.Set("text", "late caption")
		record.Set(hooks.MediaInput, []string{second})
		if err := e.App.Save(record); err != nil {
			return err
		}
		message = record.Id
		return nil
	})

	n, err := hooks.DeleteOrphanMedia(w.env.App, w.ttl)
	if err != nil {
		t.Fatalf("clean-up: %v", err)
	}
	if n != 1 {
		t.Errorf("deleted %d, want 1", n)
	}
	if w.exists(t, "chat_media", "id = {:id}", dbx.Params{"id": first}) {
		t.Errorf("the orphan is still there")
	}
	if !w.exists(t, "chat_media", "id = {:id}", dbx.Params{"id": second}) {
		t.Fatalf("media attached meanwhile was deleted")
	}
	if !w.exists(t, "chat_message_media", "message = {:m} && media = {:id}", dbx.Params{"m": message, "id": second}) {
		t.Fatalf("the message lost the attachment it got meanwhile")
	}
}

// One orphan that cannot be deleted does not keep the others: the job goes
// on, counts what it deleted and reports every failure.
func TestOrphanMediaCleanupGoesOnPastFailures(t *testing.T) {
	w := newOrphanWorld(t, 4)
	stuck := errors.New("storage refuses")
	refused := map[string]bool{w.media[0]: true, w.media[2]: true}
	w.onDelete(func(e *core.RecordEvent) error {
		if refused[e.Record.Id] {
			return stuck
		}
		return nil
	})

	n, err := hooks.DeleteOrphanMedia(w.env.App, w.ttl)
	if n != 2 {
		t.Errorf("deleted %d, want 2", n)
	}
	if !errors.Is(err, stuck) {
		t.Fatalf("error %v, want the refusals", err)
	}
	for id := range refused {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error %q does not name media %s", err, id)
		}
	}
	for _, id := range w.media {
		if got := w.exists(t, "chat_media", "id = {:id}", dbx.Params{"id": id}); got != refused[id] {
			t.Errorf("media %s kept = %v, want %v", id, got, refused[id])
		}
	}
}
