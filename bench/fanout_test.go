// Package bench measures pbchat against stock PocketBase in one process.
package bench

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/subscriptions"
	"golang.org/x/crypto/bcrypt"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
	"github.com/pbchat/pbchat/realtime"
)

// Subscription styles compared side by side.
const (
	stockPocketBase = "stock-pocketbase" // plain PocketBase, same collections and rules: list rule evaluated per client
	roomTopics      = "room-topics"      // members on chat/rooms/{id}, everybody else on chat_messages/*
	stockTakenOver  = "stock-pbchat"     // everybody on chat_messages/*, served by pbchat
)

const roomMembers = 50

// BenchmarkFanout: N connected clients, a room of 50 of them, one message.
// Per message it reports the process CPU time and the wall time until the
// last member has the event (p50, p99).
func BenchmarkFanout(b *testing.B) {
	for _, clients := range []int{1000, 5000} {
		for _, style := range []string{stockPocketBase, roomTopics, stockTakenOver} {
			b.Run(fmt.Sprintf("clients=%d/%s", clients, style), func(b *testing.B) {
				benchmarkFanout(b, clients, style)
			})
		}
	}
}

type fanout struct {
	env       *chattest.Env
	room      string
	author    *core.Record
	delivered chan time.Time
	leaked    atomic.Int64 // events that reached a non-member: must stay 0
}

func benchmarkFanout(b *testing.B, clients int, style string) {
	f := newFanout(b, clients, style)
	var walls []time.Duration
	var cpu time.Duration

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cpuBefore := processCPU()
		start := time.Now()
		f.post(b, i)
		var last time.Time
		for got := 0; got < roomMembers; got++ {
			select {
			case last = <-f.delivered:
			case <-time.After(30 * time.Second):
				b.Fatalf("only %d of %d members got message %d", got, roomMembers, i)
			}
		}
		walls = append(walls, last.Sub(start))
		cpu += processCPU() - cpuBefore
	}
	b.StopTimer()

	if n := f.leaked.Load(); n > 0 {
		b.Fatalf("%d events reached non-members", n)
	}
	slices.Sort(walls)
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/1000, "cpu-ms/msg")
	b.ReportMetric(float64(walls[len(walls)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(walls[(len(walls)*99)/100].Microseconds())/1000, "p99-ms")
}

func newFanout(b *testing.B, clients int, style string) *fanout {
	b.Helper()
	env := chattest.NewWithSetup(b, chatmodule.Config{}, cheapPasswords)
	if style == stockPocketBase {
		env = chattest.NewStock(b, cheapPasswords)
	}
	f := &fanout{env: env, delivered: make(chan time.Time, roomMembers*4)}

	members := make([]*chattest.User, roomMembers)
	for i := range members {
		members[i] = env.NewUser(fmt.Sprintf("member%d", i))
	}
	f.author = members[0].Record
	rooms, _ := env.App.FindCollectionByNameOrId("chat_rooms")
	room := core.NewRecord(rooms)
	room.Set("type", "group")
	room.Set("created_by", members[0].ID())
	if err := env.App.Save(room); err != nil {
		b.Fatal(err)
	}
	f.room = room.Id
	memberships, _ := env.App.FindCollectionByNameOrId("chat_room_users")
	for _, m := range members {
		if m == members[0] && style != stockPocketBase {
			continue // pbchat made the creator a member with the room
		}
		record := core.NewRecord(memberships)
		record.Set("room", room.Id)
		record.Set("user", m.ID())
		record.Set("permissions", []string{"can_create_messages"})
		if err := env.App.Save(record); err != nil {
			b.Fatal(err)
		}
	}

	// Outsiders: 25 connections per user, as tabs and devices add up.
	var outsiders []*chattest.User
	for i := 0; len(outsiders)*25 < clients-roomMembers; i++ {
		outsiders = append(outsiders, env.NewUser(fmt.Sprintf("outsider%d", i)))
	}
	for i := 0; i < clients; i++ {
		if i < roomMembers {
			f.connect(b, members[i], style, true)
		} else {
			f.connect(b, outsiders[(i-roomMembers)/25], style, false)
		}
	}
	return f
}

// connect registers a client the way /api/realtime does and subscribes it.
func (f *fanout) connect(b *testing.B, user *chattest.User, style string, member bool) {
	var client subscriptions.Client = subscriptions.NewDefaultClient()
	if style != stockPocketBase {
		client = realtime.NewClient()
	}
	f.env.App.SubscriptionsBroker().Register(client)
	b.Cleanup(func() { f.env.App.SubscriptionsBroker().Unregister(client.Id()) })
	go func() {
		for range client.Channel() {
			if member {
				f.delivered <- time.Now()
			} else {
				f.leaked.Add(1)
			}
		}
	}()

	subscription := "chat_messages/*"
	if style == roomTopics && member {
		subscription = "chat/rooms/" + f.room
	}
	if style == stockPocketBase {
		client.Set(apis.RealtimeClientAuthKey, user.Record)
		client.Subscribe(subscription)
		return
	}
	res := f.env.Do(user, http.MethodPost, "/api/realtime", map[string]any{
		"clientId": client.Id(), "subscriptions": []string{subscription},
	})
	if res.Status != http.StatusNoContent {
		b.Fatalf("subscribe: %d %s", res.Status, res)
	}
}

func (f *fanout) post(b *testing.B, i int) {
	messages, _ := f.env.App.FindCachedCollectionByNameOrId("chat_messages")
	message := core.NewRecord(messages)
	message.Set("room", f.room)
	message.Set("user", f.author.Id)
	message.Set("text", fmt.Sprintf("message %d", i))
	if err := f.env.App.Save(message); err != nil {
		b.Fatal(err)
	}
}

// cheapPasswords lowers the users' bcrypt cost: thousands of test users in seconds.
func cheapPasswords(app core.App) error {
	users, err := app.FindCollectionByNameOrId("users")
	if err != nil {
		return err
	}
	if password, ok := users.Fields.GetByName("password").(*core.PasswordField); ok {
		password.Cost = bcrypt.MinCost
	}
	return app.Save(users)
}

var cpuMu sync.Mutex

func processCPU() time.Duration {
	cpuMu.Lock()
	defer cpuMu.Unlock()
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
