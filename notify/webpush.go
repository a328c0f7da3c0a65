package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/migrations"
)

// The keys of the VAPID pair in migrations.SettingsTable.
const (
	vapidPublicKey  = "vapid_public_key"
	vapidPrivateKey = "vapid_private_key"
)

// pushTTL is how long a push service keeps a notification for an offline browser.
const pushTTL = 24 * 60 * 60

type vapidKeys struct{ public, private string }

// keys returns the app's VAPID key pair, generated and stored on first use.
func (n *notifier) keys() (*vapidKeys, error) {
	n.vapidMu.Lock()
	defer n.vapidMu.Unlock()
	if n.vapid != nil {
		return n.vapid, nil
	}
	var keys *vapidKeys
	err := n.app.RunInTransaction(func(tx core.App) error {
		stored := map[string]string{}
		var rows []struct {
			Key   string `db:"key"`
			Value string `db:"value"`
		}
		if err := tx.NonconcurrentDB().Select("key", "value").From(migrations.SettingsTable).
			Where(dbx.In("key", vapidPublicKey, vapidPrivateKey)).All(&rows); err != nil {
			return err
		}
		for _, r := range rows {
			stored[r.Key] = r.Value
		}
		if stored[vapidPublicKey] != "" && stored[vapidPrivateKey] != "" {
			keys = &vapidKeys{public: stored[vapidPublicKey], private: stored[vapidPrivateKey]}
			return nil
		}
		private, public, err := webpush.GenerateVAPIDKeys()
		if err != nil {
			return err
		}
		for key, value := range map[string]string{vapidPublicKey: public, vapidPrivateKey: private} {
			if _, err := tx.NonconcurrentDB().NewQuery(`INSERT OR REPLACE INTO ` + migrations.SettingsTable +
				` (key, value) VALUES ({:key}, {:value})`).Bind(dbx.Params{"key": key, "value": value}).Execute(); err != nil {
				return err
			}
		}
		keys = &vapidKeys{public: public, private: private}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("VAPID keys: %w", err)
	}
	n.vapid = keys
	return keys, nil
}

// publicKey serves GET /api/chat/push/key: {"publicKey": base64url of the
// uncompressed P-256 point}, the applicationServerKey of PushManager.subscribe.
func (n *notifier) publicKey(e *core.RequestEvent) error {
	keys, err := n.keys()
	if err != nil {
		return e.InternalServerError("", err)
	}
	return e.JSON(http.StatusOK, map[string]string{"publicKey": keys.public})
}

// subject is the VAPID subject without the "mailto:" webpush-go adds.
func (n *notifier) subject() string {
	s := n.settings.Notifications.Subject
	if s == "" {
		s = n.app.Settings().Meta.SenderAddress
	}
	if s == "" {
		s = "noreply@example.com"
	}
	return strings.TrimPrefix(s, "mailto:")
}

// sendPush encrypts payload for one subscription (RFC 8291, aes128gcm) and
// posts it to its push service.
func (n *notifier) sendPush(ctx context.Context, subscriptionID string, payload []byte) (outcome, error) {
	record, err := findRecord(n.app, migrations.PushSubscriptions, subscriptionID)
	if errors.Is(err, sql.ErrNoRows) {
		return give, nil // unsubscribed since
	}
	if err != nil {
		return retry, err
	}
	keys, err := n.keys()
	if err != nil {
		return retry, err
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	res, err := webpush.SendNotificationWithContext(ctx, payload, &webpush.Subscription{
		Endpoint: record.GetString("endpoint"),
		Keys:     webpush.Keys{P256dh: record.GetString("p256dh"), Auth: record.GetString("auth")},
	}, &webpush.Options{
		HTTPClient:      n.client,
		Subscriber:      n.subject(),
		TTL:             pushTTL,
		Urgency:         webpush.UrgencyHigh,
		VAPIDPublicKey:  keys.public,
		VAPIDPrivateKey: keys.private,
	})
	if err != nil {
		if res == nil && ctx.Err() == nil && !isNetError(err) {
			return give, err // the subscription's keys do not encrypt
		}
		return retry, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	if res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusGone {
		return gone, fmt.Errorf("push service answered %d: the subscription expired", res.StatusCode)
	}
	result := classify(res.StatusCode)
	if result != delivered {
		return result, fmt.Errorf("push service answered %d", res.StatusCode)
	}
	return delivered, nil
}
