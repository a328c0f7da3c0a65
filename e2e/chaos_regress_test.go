package e2e

// Bugs the chaos test found, each pinned down by a deterministic test.

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/pbchat/pbchat/bench"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/internal/chattest"
	"github.com/pbchat/pbchat/migrations"
	"github.com/pbchat/pbchat/realtime"
)

// TestChaosFoundEditRacingDelete: an edit whose message is deleted between
// the request loading it and its UPDATE changed no row, yet it was logged
// and published as message.updated after message.deleted, and every client
// showed the deleted message again. Now the edit fails and leaves no trace.
func TestChaosFoundEditRacingDelete(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	alice := env.NewUser("alice")
	room := env.Do(alice, http.MethodPost, "/api/collections/chat_rooms/records", map[string]any{"type": "group", "name": "g"}).Str("id")
	id := env.Do(alice, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": room, "text": "hello"}).Str("id")
	conn := env.Connect(alice)
	if res := conn.Subscribe("chat/rooms/"+room, "chat_messages/*"); res.Status != http.StatusNoContent {
		t.Fatalf("subscribe: %d %s", res.Status, res)
	}

	// The edit's copy, loaded before the delete commits.
	edit, err := env.App.FindRecordById(migrations.Messages, id)
	if err != nil {
		t.Fatal(err)
	}
	if res := env.Do(alice, http.MethodDelete, "/api/collections/chat_messages/records/"+id, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", res.Status, res)
	}
	edit.Set("text", "edited after the delete")
	if err := env.App.Save(edit); err == nil {
		t.Fatal("an edit of a message deleted meanwhile succeeded")
	}

	var types []string
	err = env.App.DB().Select("type").From(migrations.EventsTable).Where(dbx.HashExp{"record_id": id}).OrderBy("seq").Column(&types)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"message.created", "message.deleted"}; !slices.Equal(types, want) {
		t.Fatalf("log rows of the message: %v, want %v", types, want)
	}
	conn.Expect(t, "chat/rooms/"+room, func(ev chattest.Event) bool { return ev.Type() == "message.deleted" }, wait)
	conn.Expect(t, "chat_messages/*", func(ev chattest.Event) bool { return ev.Action() == "delete" }, wait)
	conn.Quiet(t, 300*time.Millisecond)
}

// TestChaosFoundSubscribeAnsweredBeforeTheRoomIsFollowed: on a node, a
// subscribe request was answered as soon as its client was indexed when
// another client's request had started following the same room and its
// NATS subscription was not confirmed yet. The client then synced, and
// what was published between its sync and the confirmation never reached
// it. Now every subscribe request is answered once its rooms are followed.
func TestChaosFoundSubscribeAnsweredBeforeTheRoomIsFollowed(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	alice, bob := env.NewUser("alice"), env.NewUser("bob")
	room := env.Do(alice, http.MethodPost, "/api/collections/chat_rooms/records", map[string]any{"type": "group", "name": "g"}).Str("id")
	if res := env.Do(alice, http.MethodPost, "/api/collections/chat_room_users/records", map[string]any{"room": room, "user": bob.ID()}); res.Status != http.StatusOK {
		t.Fatalf("add bob: %d %s", res.Status, res)
	}

	broker := &chaosGateBroker{room: room, following: make(chan struct{}), gate: make(chan struct{})}
	node, err := realtime.NewNode(realtime.NodeConfig{Writer: env.Server.URL, Broker: broker, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	server := httptest.NewServer(node.Handler())
	t.Cleanup(server.Close)
	release := sync.OnceFunc(func() { close(broker.gate) })
	t.Cleanup(release) // first: a failed test leaves no request waiting

	subscribe := func(u *chattest.User) <-chan int {
		conn := env.ConnectAt(server.URL, u)
		answered := make(chan int, 1)
		go func() {
			body, _ := json.Marshal(map[string]any{"clientId": conn.ClientID, "subscriptions": []string{"chat/rooms/" + room}})
			status, _, _ := bench.Call(context.Background(), http.DefaultClient, http.MethodPost, server.URL+"/api/realtime", u.Token, body)
			answered <- status
		}()
		return answered
	}
	first := subscribe(alice)
	<-broker.following // alice's request follows the room; NATS has not confirmed it
	second := subscribe(bob)
	select {
	case status := <-second:
		t.Fatalf("bob's subscription was answered (%d) before the room was followed", status)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	for _, answered := range []<-chan int{first, second} {
		if status := <-answered; status != http.StatusNoContent {
			t.Fatalf("subscribe: %d", status)
		}
	}
}

// chaosGateBroker is a node's bus whose Follow of one room waits for its gate.
type chaosGateBroker struct {
	room      string
	following chan struct{} // closed when that Follow has begun
	gate      chan struct{}
	once      sync.Once
}

func (b *chaosGateBroker) Publish(chat.Event) error { return nil }
func (b *chaosGateBroker) Listen(realtime.Listener) {}
func (b *chaosGateBroker) Unfollow(string)          {}
func (b *chaosGateBroker) State() (bool, string)    { return true, "connected" }
func (b *chaosGateBroker) Ask([]byte, time.Duration) ([]byte, error) {
	return nil, errors.New("one node: no other to ask")
}
func (b *chaosGateBroker) Answer(func([]byte) ([]byte, bool)) (func(), error) { return func() {}, nil }

func (b *chaosGateBroker) Follow(room string, _ bool) error {
	if room == b.room {
		b.once.Do(func() { close(b.following) })
		<-b.gate
	}
	return nil
}
