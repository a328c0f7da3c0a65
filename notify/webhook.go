package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
)

// SignatureHeader carries a webhook body's signature: "sha256=" and the hex
// HMAC-SHA256 of the body keyed with the webhook's secret.
const SignatureHeader = "X-Pbchat-Signature"

// Sign is the SignatureHeader value of body for secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// sendWebhook posts payload to a webhook that is still configured.
func (n *notifier) sendWebhook(ctx context.Context, target string, payload []byte) (outcome, error) {
	var hooks []chat.WebhookConfig
	err := n.app.RunInTransaction(func(tx core.App) error {
		var err error
		hooks, err = n.webhooks(tx)
		return err
	})
	if err != nil {
		return retry, err
	}
	secret, found := "", false
	for _, h := range hooks {
		if h.URL == target {
			secret, found = h.Secret, true
			break
		}
	}
	if !found {
		return give, nil // removed since
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return give, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pbchat-webhook")
	req.Header.Set(SignatureHeader, Sign(secret, payload))
	res, err := n.client.Do(req)
	if err != nil {
		return retry, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	result := classify(res.StatusCode)
	if result != delivered {
		return result, fmt.Errorf("webhook answered %d", res.StatusCode)
	}
	return delivered, nil
}

func isNetError(err error) bool {
	var netErr net.Error
	var urlErr *url.Error
	return errors.As(err, &netErr) || errors.As(err, &urlErr)
}

func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "?"
	}
	return u.Host
}
