package e2e

// The chaos test's writers: users who post, edit, delete, react, and room
// owners who add and remove members and rename rooms, all through the
// records API, while the servers come and go. They keep a rough model of
// the rooms to pick plausible operations; a refusal (the model was stale)
// or a failure (the writer was down) is counted, never fatal: what counts
// is the database at the end.

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/pbchat/pbchat/bench"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

type chaosUser struct{ id, email, token string }

type chaosModel struct {
	mu    sync.Mutex
	users []chaosUser
	rooms []*chaosModelRoom
	texts atomic.Int64
}

type chaosModelRoom struct {
	id        string
	owner     int
	members   map[int]string // user index → membership id
	messages  []string
	reactions []chaosModelReaction
}

type chaosModelReaction struct {
	id, message string
	user        int
}

// chaosWrites counts the writers' requests by outcome.
type chaosWrites struct {
	ok, refused, failed atomic.Int64
	byOp                sync.Map // op → *atomic.Int64 (successes)
}

func (w *chaosWrites) count(op string, status int, err error) {
	switch {
	case err != nil || status == 0 || status >= 500:
		w.failed.Add(1)
	case status >= 200 && status < 300:
		w.ok.Add(1)
		n, _ := w.byOp.LoadOrStore(op, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	default:
		w.refused.Add(1)
	}
}

func (w *chaosWrites) summary() string {
	out := ""
	for _, op := range chaosOps {
		n := int64(0)
		if v, ok := w.byOp.Load(op.name); ok {
			n = v.(*atomic.Int64).Load()
		}
		out += fmt.Sprintf(" %s=%d", op.name, n)
	}
	return out
}

var chaosEmoji = []string{"👍", "🎉", "😂", "🔥", "👀", "🙏"}

type chaosOp struct {
	name   string
	weight int
	run    func(ctx context.Context, m *chaosModel, api *http.Client, base string, rng *rand.Rand) (int, error)
}

var chaosOps = []chaosOp{
	{"post", 35, chaosPost},
	{"edit", 15, chaosEdit},
	{"delete", 8, chaosDelete},
	{"react", 20, chaosReact},
	{"unreact", 7, chaosUnreact},
	{"add", 6, chaosAdd},
	{"remove", 6, chaosRemove},
	{"rename", 3, chaosRename},
}

// chaosWriter runs operations until ctx ends, one every 60–200 ms.
func chaosWriter(ctx context.Context, m *chaosModel, api *http.Client, base string, seed uint64, counts *chaosWrites) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	total := 0
	for _, op := range chaosOps {
		total += op.weight
	}
	for ctx.Err() == nil {
		n := rng.IntN(total)
		for _, op := range chaosOps {
			if n -= op.weight; n < 0 {
				status, err := op.run(ctx, m, api, base, rng)
				if ctx.Err() == nil && status != -1 {
					counts.count(op.name, status, err)
				}
				break
			}
		}
		chaosSleep(ctx, 60+rng.IntN(140))
	}
}

// pick chooses a room and one of its members (m.mu held).
func (m *chaosModel) pick(rng *rand.Rand) (*chaosModelRoom, int) {
	room := m.rooms[rng.IntN(len(m.rooms))]
	members := make([]int, 0, len(room.members))
	for u := range room.members {
		members = append(members, u)
	}
	if len(members) == 0 {
		return room, -1
	}
	return room, members[rng.IntN(len(members))]
}

func chaosDo(ctx context.Context, api *http.Client, method, url, token string, body any) (int, map[string]any, error) {
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	status, out, err := bench.Call(callCtx, api, method, url, token, raw)
	var decoded map[string]any
	_ = json.Unmarshal(out, &decoded)
	return status, decoded, err
}

func chaosPost(ctx context.Context, m *chaosModel, api *http.Client, base string, rng *rand.Rand) (int, error) {
	m.mu.Lock()
	room, u := m.pick(rng)
	m.mu.Unlock()
	if u < 0 {
		return -1, nil
	}
	text := fmt.Sprintf("m%d by %d", m.texts.Add(1), u)
	status, rec, err := chaosDo(ctx, api, http.MethodPost, base+"/api/collections/chat_messages/records", m.users[u].token, map[string]any{"room": room.id, "text": text})
	if status == http.StatusOK {
		m.mu.Lock()
		room.messages = append(room.messages, rec["id"].(string))
		m.mu.Unlock()
	}
	return status, err
}

func chaosEdit(ctx context.Context, m *chaosModel, api *http.Client, base string, rng *rand.Rand) (int, error) {
	m.mu.Lock()
	room, u := m.pick(rng)
	if u < 0 || len(room.messages) == 0 {
		m.mu.Unlock()
		return -1, nil
	}
	id := room.messages[rng.IntN(len(room.messages))]
	m.mu.Unlock()
	text := fmt.Sprintf("e%d by %d", m.texts.Add(1), u)
	status, _, err := chaosDo(ctx, api, http.MethodPatch, base+"/api/collections/chat_messages/records/"+id, m.users[u].token, map[string]any{"text": text})
	return status, err
}

func chaosDelete(ctx context.Context, m *chaosModel, api *http.Client, base string, rng *rand.Rand) (int, error) {
	m.mu.Lock()
	room, u := m.pick(rng)
	if u < 0 || len(room.messages) == 0 {
		m.mu.Unlock()
		return -1, nil
	}
	i := rng.IntN(len(room.messages))
	id := room.messages[i]
	m.mu.Unlock()
	status, _, err := chaosDo(ctx, api, http.MethodDelete, base+"/api/collections/chat_messages/records/"+id, m.users[u].token, nil)
	if status == http.StatusNoContent || status == http.StatusNotFound {
		m.mu.Lock()
		room.messages = chaosWithout(room.messages, id)
		kept := room.reactions[:0]
		for _, r := range room.reactions {
			if r.message != id {
				kept = append(kept, r)
			}
		}
		room.reactions = kept
		m.mu.Unlock()
	}
	return status, err
}

func chaosReact(ctx context.Context, m *chaosModel, api *http.Client, base string, rng *rand.Rand) (int, error) {
	m.mu.Lock()
	room, u := m.pick(rng)
	if u < 0 || len(room.messages) == 0 {
		m.mu.Unlock()
		return -1, nil
	}
	message := room.messages[rng.IntN(len(room.messages))]
	m.mu.Unlock()
	status, rec, err := chaosDo(ctx, api, http.MethodPost, base+"/api/collections/chat_message_reactions/records", m.users[u].token,
		map[string]any{"message": message, "reaction": chaosEmoji[rng.IntN(len(chaosEmoji))]})
	if status == http.StatusOK {
		m.mu.Lock()
		room.reactions = append(room.reactions, chaosModelReaction{id: rec["id"].(string), message: message, user: u})
		m.mu.Unlock()
	}
	return status, err
}

func chaosUnreact(ctx context.Context, m *chaosModel, api *http.Client, base string, rng *rand.Rand) (int, error) {
	m.mu.Lock()
	room := m.rooms[rng.IntN(len(m.rooms))]
	if len(room.reactions) == 0 {
		m.mu.Unlock()
		return -1, nil
	}
	i := rng.IntN(len(room.reactions))
	r := room.reactions[i]
	room.reactions = append(room.reactions[:i], room.reactions[i+1:]...)
	m.mu.Unlock()
	status, _, err := chaosDo(ctx, api, http.MethodDelete, base+"/api/collections/chat_message_reactions/records/"+r.id, m.users[r.user].token, nil)
	return status, err
}

// chaosAdd: the owner adds a user, with every permission. Nobody is in
// more than 16 rooms.
func chaosAdd(ctx context.Context, m *chaosModel, api *http.Client, base string, rng *rand.Rand) (int, error) {
	m.mu.Lock()
	room := m.rooms[rng.IntN(len(m.rooms))]
	u := rng.IntN(len(m.users))
	if _, member := room.members[u]; member || m.roomsOf(u) >= 16 {
		m.mu.Unlock()
		return -1, nil
	}
	owner := m.users[room.owner].token
	m.mu.Unlock()
	status, rec, err := chaosDo(ctx, api, http.MethodPost, base+"/api/collections/chat_room_users/records", owner,
		map[string]any{"room": room.id, "user": m.users[u].id, "permissions": advAllPermissions})
	if status == http.StatusOK {
		m.mu.Lock()
		room.members[u] = rec["id"].(string)
		m.mu.Unlock()
	}
	return status, err
}

// chaosRemove: the owner removes a member other than themselves. Nobody
// is left with fewer than 10 rooms.
func chaosRemove(ctx context.Context, m *chaosModel, api *http.Client, base string, rng *rand.Rand) (int, error) {
	m.mu.Lock()
	room, u := m.pick(rng)
	if u < 0 || u == room.owner || m.roomsOf(u) <= 10 {
		m.mu.Unlock()
		return -1, nil
	}
	membership := room.members[u]
	delete(room.members, u)
	owner := m.users[room.owner].token
	m.mu.Unlock()
	status, _, err := chaosDo(ctx, api, http.MethodDelete, base+"/api/collections/chat_room_users/records/"+membership, owner, nil)
	return status, err
}

func chaosRename(ctx context.Context, m *chaosModel, api *http.Client, base string, rng *rand.Rand) (int, error) {
	m.mu.Lock()
	room := m.rooms[rng.IntN(len(m.rooms))]
	owner := m.users[room.owner].token
	m.mu.Unlock()
	status, _, err := chaosDo(ctx, api, http.MethodPatch, base+"/api/collections/chat_rooms/records/"+room.id, owner,
		map[string]any{"name": fmt.Sprintf("room %d", m.texts.Add(1))})
	return status, err
}

// roomsOf counts the rooms u is in (m.mu held).
func (m *chaosModel) roomsOf(u int) int {
	n := 0
	for _, r := range m.rooms {
		if _, ok := r.members[u]; ok {
			n++
		}
	}
	return n
}

func chaosWithout(list []string, item string) []string {
	out := list[:0]
	for _, x := range list {
		if x != item {
			out = append(out, x)
		}
	}
	return out
}
