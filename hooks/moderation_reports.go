package hooks

import (
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// reportCreateRequest: any member of the message's room reports it, as
// themselves. A message the caller cannot see (not a member) is a 404.
func (m moderation) reportCreateRequest(e *core.RecordRequestEvent) error {
	if isSuperuser(e.RequestEvent) {
		return e.Next()
	}
	messageID := e.Record.GetString("message")
	if messageID == "" {
		return e.BadRequestError("Missing message.", fieldError("message", "validation_required", "message is required"))
	}
	actorID := authUserID(e.RequestEvent, m.settings)
	message, err := findRecord(e.App, migrations.Messages, messageID)
	if err != nil {
		return err
	}
	var membership *core.Record
	if message != nil {
		if membership, err = findMembership(e.App, message.GetString("room"), actorID); err != nil {
			return err
		}
	}
	if membership == nil {
		return e.NotFoundError("The message does not exist or you are not a member of its room.", nil)
	}
	e.Record.Set("reporter", actorID)
	return e.Next()
}

// reportCreate checks the reason and sets the report's room to its
// message's, for every writer.
func (m moderation) reportCreate(e *core.RecordEvent) error {
	if err := chat.ValidateReportReason(e.Record.GetString("reason")); err != nil {
		return fieldError("reason", "invalid_reason", err.Error())
	}
	message, err := findRecord(e.App, migrations.Messages, e.Record.GetString("message"))
	if err != nil {
		return err
	}
	if message != nil {
		e.Record.Set("room", message.GetString("room"))
	} // else the relation validator answers 400 on message
	return e.Next()
}

// reportUpdate keeps what a report is about and who made it (the
// dashboard may change its reason).
func (m moderation) reportUpdate(e *core.RecordEvent) error {
	if err := immutable(e.Record, "message", "reporter", "room"); err != nil {
		return err
	}
	if err := chat.ValidateReportReason(e.Record.GetString("reason")); err != nil {
		return fieldError("reason", "invalid_reason", err.Error())
	}
	return e.Next()
}
