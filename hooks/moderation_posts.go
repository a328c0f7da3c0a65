package hooks

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
	"github.com/pbchat/pbchat/ratelimit"
)

// Keys a chat_messages record carries between the create request hook and
// the model hook (not fields: never stored nor exported).
const (
	// postLimitsKey marks a message a chat user posts through the API: its
	// author's silence and the room's slow mode apply (not to superusers'
	// or Go code's writes, system messages included).
	postLimitsKey = "@pbchat_post_limits"
	// retryAfterKey carries a slow mode refusal's Retry-After seconds back
	// to the request hook, which has the response.
	retryAfterKey = "@pbchat_retry_after"
)

// messageCreateRequest marks a chat user's message for the post limits
// (checked by messageCreate in the message's transaction) and answers a
// slow mode refusal's Retry-After.
func (m moderation) messageCreateRequest(e *core.RecordRequestEvent) error {
	if isSuperuser(e.RequestEvent) || authUserID(e.RequestEvent, m.settings) == "" {
		return e.Next()
	}
	e.Record.Set(postLimitsKey, true)
	err := e.Next()
	if seconds, ok := e.Record.Get(retryAfterKey).(int); ok && seconds > 0 && err != nil {
		e.Response.Header().Set("Retry-After", strconv.Itoa(seconds))
		ratelimit.RefuseBatch(e.RequestEvent, err, seconds)
	}
	return err
}

// messageCreate applies the post limits to a marked message: a silenced
// author is refused (403 naming silenced), and in slow mode an author
// without can_delete_messages posts once per slow_mode_seconds (429). The
// author's last message is read in the write's transaction: writes are
// serialised, so two concurrent posts cannot both pass.
func (m moderation) messageCreate(e *core.RecordEvent) error {
	if marked, _ := e.Record.Get(postLimitsKey).(bool); !marked {
		return e.Next()
	}
	return inTransaction(e, func(tx core.App) error {
		if err := m.checkPostLimits(tx, e.Record, time.Now()); err != nil {
			return err
		}
		return e.Next()
	})
}

type postLimits struct {
	SilencedUntil string
	Permissions   string
	SlowMode      int
	LastPost      sql.NullString
}

// postLimitsSQL is checkPostLimits' one query (parameters: now, room,
// user): the membership, the room's slow mode and, only in slow mode, the
// author's last post within the slow mode's window (the (room, created, id,
// user) index, newest first: it walks the room's last N seconds only,
// however long ago the author last posted). A prepared statement: parsing
// it was ~70 µs of every send, inside the write transaction.
func postLimitsSQL(ownPosts string) string {
	return `
		SELECT m.silenced_until, m.permissions, COALESCE(r.slow_mode_seconds, 0),
			CASE WHEN r.slow_mode_seconds > 0 THEN (
				SELECT created FROM ` + migrations.Messages + `
				WHERE room = m.room
					AND created > strftime('%Y-%m-%d %H:%M:%fZ', ?1, '-' || r.slow_mode_seconds || ' seconds')
					AND user = m.user` + ownPosts + `
				ORDER BY created DESC LIMIT 1
			) END
		FROM ` + migrations.RoomUsers + ` m JOIN ` + migrations.Rooms + ` r ON r.id = m.room
		WHERE m.room = ?2 AND m.user = ?3 LIMIT 1`
}

func (m moderation) checkPostLimits(tx core.App, message *core.Record, now time.Time) error {
	roomID, userID := message.GetString("room"), message.GetString("user")
	// The author's own posts only: system messages name their actor as
	// user, and a member's join is no post.
	ownPosts := ""
	if c, err := tx.FindCachedCollectionByNameOrId(migrations.Messages); err == nil && c.Fields.GetByName("system") != nil {
		ownPosts = " AND system = ''"
	}
	var limits postLimits
	err := queryRow(tx, postLimitsSQL(ownPosts),
		[]any{now.UTC().Format(types.DefaultDateLayout), roomID, userID},
		&limits.SilencedUntil, &limits.Permissions, &limits.SlowMode, &limits.LastPost)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not a member: the request hooks have answered that
	}
	if err != nil {
		return serverError(fmt.Errorf("post limits of %s in room %s: %w", userID, roomID, err))
	}

	if until, _ := types.ParseDateTime(limits.SilencedUntil); chat.SilencedAt(until.Time(), now) {
		return router.NewForbiddenError(
			fmt.Sprintf("You are silenced in this room (%s) until %s.", chat.Silenced, until.Time().UTC().Format(time.RFC3339)),
			validation.Errors{"permission": validation.NewError(chat.Silenced, chat.Silenced)})
	}
	if limits.SlowMode <= 0 || !limits.LastPost.Valid {
		return nil
	}
	var permissions chat.Permissions
	if err := json.Unmarshal([]byte(limits.Permissions), &permissions); err != nil {
		return serverError(fmt.Errorf("permissions of %s in room %s: %w", userID, roomID, err))
	}
	if permissions.Has(chat.CanDeleteMessages) {
		return nil
	}
	last, _ := types.ParseDateTime(limits.LastPost.String)
	wait := chat.SlowModeWait(limits.SlowMode, last.Time(), now)
	if wait <= 0 {
		return nil
	}
	seconds := chat.RetryAfterSeconds(wait)
	message.Set(retryAfterKey, seconds)
	return router.NewTooManyRequestsError(
		fmt.Sprintf("Slow mode (%s): one message every %d seconds in this room; try again in %d seconds.", chat.SlowMode, limits.SlowMode, seconds),
		validation.Errors{"slow_mode_seconds": validation.NewError(chat.SlowMode, strconv.Itoa(seconds))})
}
