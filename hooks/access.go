package hooks

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// findMembership returns the (room, user) membership, or nil when there is none.
func findMembership(app core.App, roomID, userID string) (*core.Record, error) {
	if roomID == "" || userID == "" {
		return nil, nil
	}
	// A plain query on the (room, user) index: a filter expression would be
	// parsed and resolved on every chat write (about a third of this lookup's cost).
	record := &core.Record{}
	err := app.RecordQuery(migrations.RoomUsers).
		AndWhere(dbx.HashExp{"room": roomID, "user": userID}).
		Limit(1).
		One(record)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, serverError(fmt.Errorf("find membership of %s in room %s: %w", userID, roomID, err))
	}
	return record, nil
}

// memberPermissionsSQL reads a membership's permissions only (parameters:
// room, user), a prepared statement: a chat message's check needs no record.
const memberPermissionsSQL = `SELECT permissions FROM ` + migrations.RoomUsers + ` WHERE room = ? AND user = ? LIMIT 1`

// memberPermissions is what permissionsOf(findMembership(...)) is, without
// loading the membership as a record; member is false for a non-member.
func memberPermissions(app core.App, roomID, userID string) (permissions chat.Permissions, member bool, err error) {
	if roomID == "" || userID == "" {
		return nil, false, nil
	}
	var raw string
	err = queryRow(app, memberPermissionsSQL, []any{roomID, userID}, &raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, serverError(fmt.Errorf("find membership of %s in room %s: %w", userID, roomID, err))
	}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &permissions); err != nil {
			return nil, false, serverError(fmt.Errorf("permissions of %s in room %s: %w", userID, roomID, err))
		}
	}
	return permissions, true, nil
}

func permissionsOf(membership *core.Record) chat.Permissions {
	if membership == nil {
		return nil
	}
	return membership.GetStringSlice("permissions")
}

// findRecord returns the record or nil when it does not exist.
func findRecord(app core.App, collection, id string) (*core.Record, error) {
	if id == "" {
		return nil, nil
	}
	record, err := app.FindRecordById(collection, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, serverError(fmt.Errorf("find %s %s: %w", collection, id, err))
	}
	return record, nil
}

// roomAccess is what the caller of a request is to a room.
type roomAccess struct {
	room       *core.Record
	membership *core.Record // nil for non-members
}

func (a roomAccess) permissions() chat.Permissions { return permissionsOf(a.membership) }

// visible reports whether the room may be seen at all: members see their
// rooms, everybody sees public ones.
func (a roomAccess) visible() bool {
	return a.room != nil && (a.membership != nil || a.room.GetBool("is_public"))
}

func loadRoomAccess(app core.App, roomID, userID string) (roomAccess, error) {
	room, err := findRecord(app, migrations.Rooms, roomID)
	if err != nil || room == nil {
		return roomAccess{}, err
	}
	membership, err := findMembership(app, roomID, userID)
	if err != nil {
		return roomAccess{}, err
	}
	return roomAccess{room: room, membership: membership}, nil
}

// requireMember answers 404 for a room the caller cannot see and 403 naming
// permission for one they see but are not a member of.
func requireMember(e *core.RequestEvent, access roomAccess, permission string) error {
	if !access.visible() {
		return e.NotFoundError("The room does not exist or you are not a member of it.", nil)
	}
	if access.membership == nil {
		return forbidden(e, &chat.PermissionDenied{Permission: permission, Reason: fmt.Sprintf("only members of the room may do this (%s)", permission)})
	}
	return nil
}

// forbidden turns a rule refusal into PocketBase's 403 naming the permission.
func forbidden(e *core.RequestEvent, err error) error {
	var denied *chat.PermissionDenied
	if !errors.As(err, &denied) {
		return err
	}
	return e.ForbiddenError(denied.Error(), validation.Errors{
		"permission": validation.NewError("missing_permission", denied.Permission),
	})
}

// serverError marks err as the server's failure (the database's, say), not
// the caller's: PocketBase answers a plain error with a 400, as if the input
// were wrong, wherever it comes from (a route, a hook under the records
// API); a marked one answers 500 "Something went wrong", with nothing of err
// in the body. Go callers still see err itself (its message, errors.Is/As).
// API errors pass unchanged; nil stays nil.
func serverError(err error) error {
	var apiErr *router.ApiError
	if err == nil || errors.As(err, &apiErr) {
		return err
	}
	return &internalError{cause: err, answer: router.NewInternalServerError("", err)}
}

// inputError is err as the caller's invalid input (a 400 with message and
// the field errors) when it is one, else as the server's failure.
func inputError(e *core.RequestEvent, message string, err error) error {
	var invalid validation.Errors
	if errors.As(err, &invalid) {
		return e.BadRequestError(message, invalid)
	}
	return serverError(err)
}

// internalError is serverError's mark: err, unwrapping to the 500 that
// PocketBase's error handlers find with errors.As.
type internalError struct {
	cause  error
	answer *router.ApiError
}

// Error is the cause's text, for logs and Go callers.
func (e *internalError) Error() string { return e.cause.Error() }

// Unwrap exposes both the cause and the 500 answer to errors.Is/As.
func (e *internalError) Unwrap() []error { return []error{e.cause, e.answer} }

// fieldError is the 400 body PocketBase gives an invalid field.
func fieldError(field, code, message string) error {
	return validation.Errors{field: validation.NewError(code, message)}
}

// isSuperuser reports whether the request comes from the dashboard's kind of account.
func isSuperuser(e *core.RequestEvent) bool {
	return e.HasSuperuserAuth()
}

// authUserID is the caller's id when it is a chat user (of the configured
// users collection), else "".
func authUserID(e *core.RequestEvent, settings chat.Settings) string {
	if e.Auth == nil || e.Auth.Collection().Name != settings.UsersCollection {
		return ""
	}
	return e.Auth.Id
}

// inTransaction runs fn, which goes on down the hook chain with e.Next(), in
// one transaction with what fn writes itself. The hooks that run after the
// commit (after-success hooks, realtime) get the outer app back, not the
// finished transaction.
func inTransaction(e *core.RecordEvent, fn func(tx core.App) error) error {
	original := e.App
	defer func() { e.App = original }()
	return e.App.RunInTransaction(func(tx core.App) error {
		e.App = tx
		return fn(tx)
	})
}
