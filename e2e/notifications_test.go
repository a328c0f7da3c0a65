package e2e

// Notifications: a new message reaches the members who are away through Web
// Push (a test push service that decrypts what it receives, RFC 8291) and
// signed webhooks; never its author, a member who muted the room or one
// whose client has the room open; quick messages coalesce; an expired push
// subscription is removed; a failing webhook is retried; a SIGKILL between
// the message's commit and the push loses nothing.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

// decryptPush is a browser's side of RFC 8291 (aes128gcm, RFC 8188, one record).
func decryptPush(body []byte, ua *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("short body")
	}
	salt, idLen := body[:16], int(body[20])
	rs := binary.BigEndian.Uint32(body[16:20])
	if len(body) < 21+idLen || rs < 18 {
		return nil, errors.New("bad header")
	}
	asPublicBytes, ciphertext := body[21:21+idLen], body[21+idLen:]
	asPublic, err := ecdh.P256().NewPublicKey(asPublicBytes)
	if err != nil {
		return nil, err
	}
	secret, err := ua.ECDH(asPublic)
	if err != nil {
		return nil, err
	}
	info := "WebPush: info\x00" + string(ua.PublicKey().Bytes()) + string(asPublicBytes)
	ikm, err := hkdf.Key(sha256.New, secret, auth, info, 32)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, err
	}
	plain = []byte(strings.TrimRight(string(plain), "\x00"))
	if len(plain) == 0 || plain[len(plain)-1] != 2 {
		return nil, errors.New("no last-record delimiter")
	}
	return plain[:len(plain)-1], nil
}

func b64(s string) []byte {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return raw
}

// The decryption above is checked against RFC 8291's example (Appendix A),
// so that the pushes it reads prove webpush-go's encryption right.
func TestPushDecryptRFC8291(t *testing.T) {
	ua, err := ecdh.P256().NewPrivateKey(b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(ua.PublicKey().Bytes()); got != "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4" {
		t.Fatalf("public key %s", got)
	}
	body := b64("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")
	plain, err := decryptPush(body, ua, b64("BTBZMqHH6r4Tts7J_aSIgg"))
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != "When I grow up, I want to be a watermelon" {
		t.Fatalf("plaintext %q", plain)
	}
}

// pushed is one request a push endpoint received, decrypted.
type pushed struct {
	Authorization string
	Encoding      string
	Note          struct {
		Type    string         `json:"type"`
		User    string         `json:"user"`
		Room    string         `json:"room"`
		Message map[string]any `json:"message"`
		Count   int            `json:"count"`
	}
}

// pushService is a test push service: one endpoint per browser, each
// answering status (201 unless set) and decrypting what it accepts.
type pushService struct {
	t      *testing.T
	server *httptest.Server
	mu     sync.Mutex
	subs   map[string]*browser
}

// browser is a push subscription's keys and what its endpoint received.
type browser struct {
	name     string
	key      *ecdh.PrivateKey
	auth     []byte
	status   atomic.Int32
	received chan pushed
	requests atomic.Int32
}

func newPushService(t *testing.T) *pushService {
	p := &pushService{t: t, subs: map[string]*browser{}}
	p.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		b := p.subs[strings.TrimPrefix(r.URL.Path, "/push/")]
		p.mu.Unlock()
		if b == nil {
			http.NotFound(w, r)
			return
		}
		b.requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		if status := int(b.status.Load()); status != 0 && status != http.StatusCreated {
			w.WriteHeader(status)
			return
		}
		got := pushed{Authorization: r.Header.Get("Authorization"), Encoding: r.Header.Get("Content-Encoding")}
		plain, err := decryptPush(body, b.key, b.auth)
		if err != nil {
			t.Errorf("push to %s does not decrypt: %v", b.name, err)
		} else if err := json.Unmarshal(plain, &got.Note); err != nil {
			t.Errorf("push to %s: %v: %s", b.name, err, plain)
		}
		w.WriteHeader(http.StatusCreated)
		b.received <- got
	}))
	t.Cleanup(p.server.Close)
	return p
}

func (p *pushService) browser(name string) *browser {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	b := &browser{name: name, key: key, auth: make([]byte, 16), received: make(chan pushed, 16)}
	_, _ = rand.Read(b.auth)
	p.mu.Lock()
	p.subs[name] = b
	p.mu.Unlock()
	return b
}

// subscription is the body of a chat_push_subscriptions create.
func (p *pushService) subscription(b *browser, user string) map[string]any {
	return map[string]any{
		"user":     user,
		"endpoint": p.server.URL + "/push/" + b.name,
		"p256dh":   base64.RawURLEncoding.EncodeToString(b.key.PublicKey().Bytes()),
		"auth":     base64.RawURLEncoding.EncodeToString(b.auth),
	}
}

func (b *browser) expect(t *testing.T, timeout time.Duration) pushed {
	t.Helper()
	select {
	case got := <-b.received:
		return got
	case <-time.After(timeout):
		t.Fatalf("no push to %s within %s", b.name, timeout)
		return pushed{}
	}
}

func (b *browser) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-b.received:
		t.Fatalf("unexpected push to %s: %+v", b.name, got.Note)
	case <-time.After(d):
	}
}

// webhookReceiver verifies signatures and answers from a script of statuses
// (then 200).
type webhookReceiver struct {
	server   *httptest.Server
	secret   string
	mu       sync.Mutex
	statuses []int
	received chan map[string]any
	calls    atomic.Int32
}

func newWebhookReceiver(t *testing.T, secret string, statuses ...int) *webhookReceiver {
	h := &webhookReceiver{secret: secret, statuses: statuses, received: make(chan map[string]any, 16)}
	h.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); r.Header.Get("X-Pbchat-Signature") != want {
			t.Errorf("webhook signature %q, want %q", r.Header.Get("X-Pbchat-Signature"), want)
		}
		h.mu.Lock()
		status := http.StatusOK
		if len(h.statuses) > 0 {
			status, h.statuses = h.statuses[0], h.statuses[1:]
		}
		h.mu.Unlock()
		w.WriteHeader(status)
		if status == http.StatusOK {
			var note map[string]any
			if err := json.Unmarshal(body, &note); err != nil {
				t.Errorf("webhook body: %v: %s", err, body)
			}
			h.received <- note
		}
	}))
	t.Cleanup(h.server.Close)
	return h
}

// notifyFixture: alice, bob, carol and dave share alice's group.
type notifyFixture struct {
	*realtimeFixture
	dave *chattest.User
	push *pushService
}

func newNotifyFixture(t *testing.T, config chatmodule.Config) *notifyFixture {
	f := &notifyFixture{realtimeFixture: newFixtureWith(t, config), push: newPushService(t)}
	f.dave = f.env.NewUser("dave")
	f.addMember(t, f.alice, f.group, f.carol)
	f.addMember(t, f.alice, f.group, f.dave)
	return f
}

// subscribe registers a browser of user's for push.
func (f *notifyFixture) subscribe(t *testing.T, user *chattest.User) *browser {
	t.Helper()
	b := f.push.browser(strings.ToLower(user.Record.GetString("name")) + "-" + user.ID())
	res := f.env.Do(user, http.MethodPost, "/api/collections/chat_push_subscriptions/records", f.push.subscription(b, user.ID()))
	if res.Status != http.StatusOK {
		t.Fatalf("subscribe: %d %s", res.Status, res)
	}
	return b
}

func fastNotifications(window time.Duration, hooks ...chatmodule.WebhookConfig) chatmodule.Config {
	return chatmodule.Config{Notifications: chatmodule.NotificationSettings{
		Window: window, RetryBackoff: 100 * time.Millisecond, Webhooks: hooks,
	}}
}

func TestNotificationsReachOnlyMembersWhoAreAway(t *testing.T) {
	hook := newWebhookReceiver(t, "s3cret")
	f := newNotifyFixture(t, fastNotifications(200*time.Millisecond, chatmodule.WebhookConfig{URL: hook.server.URL, Secret: "s3cret"}))
	alicePush, bobPush, carolPush, davePush := f.subscribe(t, f.alice), f.subscribe(t, f.bob), f.subscribe(t, f.carol), f.subscribe(t, f.dave)

	// carol muted the room; dave has it open.
	var carolMember string
	for _, m := range f.env.Do(f.carol, http.MethodGet, "/api/collections/chat_room_users/records?filter="+url.QueryEscape("room = '"+f.group+"' && user = '"+f.carol.ID()+"'"), nil).Items() {
		carolMember, _ = m["id"].(string)
	}
	if res := f.env.Do(f.carol, http.MethodPatch, "/api/collections/chat_room_users/records/"+carolMember, map[string]any{"muted": true}); res.Status != http.StatusOK {
		t.Fatalf("mute: %d %s", res.Status, res)
	}
	daveSSE := f.env.Connect(f.dave)
	if res := daveSSE.Subscribe("chat/rooms/" + f.group); res.Status != http.StatusNoContent {
		t.Fatalf("dave subscribe: %d %s", res.Status, res)
	}

	key := f.env.Do(f.bob, http.MethodGet, "/api/chat/push/key", nil).Str("publicKey")
	if len(b64(key)) != 65 {
		t.Fatalf("public key %q is not a P-256 point", key)
	}
	message := f.post(t, f.alice, f.group, "hello, away members")

	got := bobPush.expect(t, wait)
	if got.Encoding != "aes128gcm" || !strings.HasSuffix(got.Authorization, ", k="+key) || !strings.HasPrefix(got.Authorization, "vapid t=") {
		t.Fatalf("push headers: encoding %q, authorization %q (key %s)", got.Encoding, got.Authorization, key)
	}
	if got.Note.Type != "message.created" || got.Note.User != f.bob.ID() || got.Note.Room != f.group || got.Note.Count != 1 ||
		got.Note.Message["id"] != message || got.Note.Message["text"] != "hello, away members" {
		t.Fatalf("push: %+v", got.Note)
	}
	note := <-hook.received
	if note["type"] != "message.created" || note["user"] != f.bob.ID() || note["room"] != f.group || note["count"] != 1.0 {
		t.Fatalf("webhook: %v", note)
	}
	for _, b := range []*browser{alicePush, carolPush, davePush} {
		b.quiet(t, 300*time.Millisecond)
	}
	if n := hook.calls.Load(); n != 1 {
		t.Fatalf("webhook called %d times, want once (bob)", n)
	}
}

func TestNotificationsCoalesce(t *testing.T) {
	f := newNotifyFixture(t, fastNotifications(time.Second))
	bobPush := f.subscribe(t, f.bob)
	for _, text := range []string{"one", "two", "three"} {
		f.post(t, f.alice, f.group, text)
	}
	got := bobPush.expect(t, wait)
	if got.Note.Count != 3 || got.Note.Message["text"] != "three" {
		t.Fatalf("coalesced push: count %d, text %v; want 3, three", got.Note.Count, got.Note.Message["text"])
	}
	bobPush.quiet(t, 1500*time.Millisecond)
}

func TestNotificationsExpiredSubscriptionIsRemoved(t *testing.T) {
	for _, status := range []int{http.StatusGone, http.StatusNotFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			f := newNotifyFixture(t, fastNotifications(100*time.Millisecond))
			bobPush := f.subscribe(t, f.bob)
			bobPush.status.Store(int32(status))
			f.post(t, f.alice, f.group, "anyone there?")
			deadline := time.Now().Add(wait)
			for f.env.Count("chat_push_subscriptions", "user = {:u}", map[string]any{"u": f.bob.ID()}) > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the subscription answered %d and is still there", status)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if list := f.env.Do(f.bob, http.MethodGet, "/api/collections/chat_push_subscriptions/records", nil).Items(); len(list) != 0 {
				t.Fatalf("bob still lists %d subscriptions", len(list))
			}
			if n := bobPush.requests.Load(); n != 1 {
				t.Fatalf("push endpoint got %d requests, want 1 (no retry after %d)", n, status)
			}
		})
	}
}

func TestNotificationsRetryAfterServerErrors(t *testing.T) {
	hook := newWebhookReceiver(t, "retry-secret", http.StatusInternalServerError, http.StatusBadGateway)
	f := newNotifyFixture(t, fastNotifications(100*time.Millisecond, chatmodule.WebhookConfig{URL: hook.server.URL, Secret: "retry-secret"}))
	bobPush := f.subscribe(t, f.bob)
	bobPush.status.Store(http.StatusServiceUnavailable)
	f.post(t, f.alice, f.group, "try again")

	select {
	case note := <-hook.received:
		msg, _ := note["message"].(map[string]any)
		if msg["text"] != "try again" {
			t.Fatalf("webhook: %v", note)
		}
	case <-time.After(wait):
		t.Fatal("the webhook was not retried to success")
	}
	if n := hook.calls.Load(); n < 3 {
		t.Fatalf("webhook called %d times, want 3 (500, 502, 200)", n)
	}
	// The push service comes back: the push is retried.
	deadline := time.Now().Add(wait)
	for bobPush.requests.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the push was not retried after a 503")
		}
		time.Sleep(20 * time.Millisecond)
	}
	bobPush.status.Store(http.StatusCreated)
	if got := bobPush.expect(t, 2*wait); got.Note.Message["text"] != "try again" {
		t.Fatalf("push: %+v", got.Note)
	}
}

func TestPushSubscriptionsAreOwnOnly(t *testing.T) {
	f := newNotifyFixture(t, fastNotifications(time.Hour))
	f.subscribe(t, f.bob)
	b := f.push.browser("forged")
	if res := f.env.Do(f.carol, http.MethodPost, "/api/collections/chat_push_subscriptions/records", f.push.subscription(b, f.bob.ID())); res.Status == http.StatusOK {
		t.Fatalf("carol created a subscription for bob: %s", res)
	}
	if list := f.env.Do(f.carol, http.MethodGet, "/api/collections/chat_push_subscriptions/records", nil).Items(); len(list) != 0 {
		t.Fatalf("carol lists %d subscriptions of others", len(list))
	}
	if list := f.env.Do(f.bob, http.MethodGet, "/api/collections/chat_push_subscriptions/records", nil).Items(); len(list) != 1 {
		t.Fatalf("bob lists %d subscriptions, want his 1", len(list))
	}
	if res := f.env.Do(nil, http.MethodGet, "/api/collections/chat_webhooks/records", nil); res.Status == http.StatusOK {
		t.Fatalf("anyone lists webhooks: %s", res)
	}
}

// A SIGKILL after the message's commit and before its push: the push still
// leaves after the restart.
func TestNotificationSurvivesSIGKILL(t *testing.T) {
	bin, dir, server, c := startDemoPBChat(t)
	push := newPushService(t)
	super := c.superuserToken(t)
	ids, tokens := c.newUsers(t, super, "notify", 2)
	room := c.must(t, tokens[0], http.MethodPost, "/api/collections/chat_rooms/records", map[string]any{"type": "group", "name": "crash"}, http.StatusOK).Str("id")
	c.must(t, tokens[0], http.MethodPost, "/api/collections/chat_room_users/records", map[string]any{"room": room, "user": ids[1]}, http.StatusOK)
	b := push.browser("survivor")
	c.must(t, tokens[1], http.MethodPost, "/api/collections/chat_push_subscriptions/records", push.subscription(b, ids[1]), http.StatusOK)

	// The default window (10s) holds the push back well past the kill.
	c.must(t, tokens[0], http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": room, "text": "still there?"}, http.StatusOK)
	server.kill()
	if n := b.requests.Load(); n != 0 {
		t.Fatalf("pushed before the kill (%d): the test proves nothing", n)
	}
	startPBChat(t, bin, dir)
	if got := b.expect(t, 30*time.Second); got.Note.Message["text"] != "still there?" || got.Note.User != ids[1] {
		t.Fatalf("push after restart: %+v", got.Note)
	}
}

func TestNotificationsDashboardWebhooks(t *testing.T) {
	on, off := newWebhookReceiver(t, "dash"), newWebhookReceiver(t, "off")
	f := newNotifyFixture(t, fastNotifications(100*time.Millisecond))
	super := f.env.Superuser()
	for _, hook := range []map[string]any{
		{"url": on.server.URL, "secret": "dash"},
		{"url": off.server.URL, "secret": "off", "disabled": true},
	} {
		if res := f.env.Do(super, http.MethodPost, "/api/collections/chat_webhooks/records", hook); res.Status != http.StatusOK {
			t.Fatalf("add webhook: %d %s", res.Status, res)
		}
	}
	f.post(t, f.alice, f.group, "to the dashboard's hook")
	got := map[string]bool{}
	for range 3 { // bob, carol, dave
		select {
		case note := <-on.received:
			got[note["user"].(string)] = true
		case <-time.After(wait):
			t.Fatalf("webhook got %v, want bob, carol and dave", got)
		}
	}
	if !got[f.bob.ID()] || !got[f.carol.ID()] || !got[f.dave.ID()] || got[f.alice.ID()] {
		t.Fatalf("webhook got %v, want bob, carol and dave", got)
	}
	time.Sleep(300 * time.Millisecond)
	if n := off.calls.Load(); n != 0 {
		t.Fatalf("a disabled webhook was called %d times", n)
	}
}

// A mention (chat_messages.mentions) notifies a member who muted the room.
func TestNotificationsMentionInMutedRoom(t *testing.T) {
	f := newNotifyFixture(t, fastNotifications(100*time.Millisecond))
	carolPush, davePush := f.subscribe(t, f.carol), f.subscribe(t, f.dave)
	for _, user := range []*chattest.User{f.carol, f.dave} {
		for _, m := range f.env.Do(user, http.MethodGet, "/api/collections/chat_room_users/records?filter="+url.QueryEscape("room = '"+f.group+"' && user = '"+user.ID()+"'"), nil).Items() {
			if res := f.env.Do(user, http.MethodPatch, "/api/collections/chat_room_users/records/"+m["id"].(string), map[string]any{"muted": true}); res.Status != http.StatusOK {
				t.Fatalf("mute: %d %s", res.Status, res)
			}
		}
	}
	res := f.env.Do(f.alice, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": f.group, "text": "@carol look", "mentions": []string{f.carol.ID()}})
	if res.Status != http.StatusOK {
		t.Fatalf("post: %d %s", res.Status, res)
	}
	if got := carolPush.expect(t, wait); got.Note.Message["text"] != "@carol look" {
		t.Fatalf("push: %+v", got.Note)
	}
	davePush.quiet(t, 300*time.Millisecond)
}
