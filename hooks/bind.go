// Package hooks enforces pbchat's rules on every write: model hooks keep the
// invariants for every writer (records API, batch, dashboard, Go code),
// request hooks answer who may do what, and the /api/chat routes live here.
package hooks

import (
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// Bind attaches every pbchat hook, route and job to app. It is the one place
// that shows all of them. settings must have gone through WithDefaults.
// publish receives every committed change as a room event.
func Bind(app core.App, settings chat.Settings, publish chat.Publisher) {
	rooms := rooms{settings}
	members := members{settings}
	messages := messages{settings}
	media := media{settings}
	reactions := reactions{settings}
	private := private{settings}
	overview := overview{settings}

	// Invariants: every writer.
	app.OnRecordCreate(migrations.Rooms).BindFunc(rooms.create)
	app.OnRecordUpdate(migrations.Rooms).BindFunc(rooms.update)
	app.OnRecordCreate(migrations.RoomUsers).BindFunc(members.create)
	app.OnRecordUpdate(migrations.RoomUsers).BindFunc(members.update)
	app.OnRecordCreate(migrations.Messages).BindFunc(messages.create)
	app.OnRecordUpdate(migrations.Messages).BindFunc(messages.update)
	// Replies, threads, mentions: after messages.create, in its transaction.
	threads, mentions := threads{settings}, mentions{}
	app.OnRecordCreate(migrations.Messages).BindFunc(threads.create)
	app.OnRecordCreate(migrations.Messages).BindFunc(mentions.create)
	app.OnRecordUpdate(migrations.Messages).BindFunc(threads.update)
	app.OnRecordUpdate(migrations.Messages).BindFunc(mentions.update)
	app.OnRecordDelete(migrations.Messages).BindFunc(threads.delete)
	app.OnRecordDelete(migrations.Messages).BindFunc(mentions.delete)
	app.OnRecordUpdate(migrations.Media).BindFunc(media.update)
	app.OnRecordCreate(migrations.MessageMedia).BindFunc(linkSave)
	app.OnRecordUpdate(migrations.MessageMedia).BindFunc(linkSave)
	app.OnRecordDelete(migrations.MessageMedia).BindFunc(linkDelete)
	app.OnRecordCreate(migrations.MessageReacts).BindFunc(reactions.create)
	app.OnRecordUpdate(migrations.MessageReacts).BindFunc(reactions.update)
	app.OnRecordCreate(migrations.Messages).BindFunc(systemGuard)
	app.OnRecordUpdate(migrations.Messages).BindFunc(systemGuard)

	// System messages: in the transaction of the change they tell about.
	app.OnRecordCreate(migrations.RoomUsers).BindFunc(membershipMessage(true))
	app.OnRecordDelete(migrations.RoomUsers).BindFunc(membershipMessage(false))
	app.OnRecordUpdate(migrations.Rooms).BindFunc(renameMessage)

	// Permissions: who asks, through the records and batch APIs.
	app.OnRecordCreateRequest(migrations.Rooms).BindFunc(rooms.createRequest)
	app.OnRecordUpdateRequest(migrations.Rooms).BindFunc(rooms.updateRequest)
	app.OnRecordDeleteRequest(migrations.Rooms).BindFunc(rooms.deleteRequest)
	app.OnRecordCreateRequest(migrations.RoomUsers).BindFunc(members.createRequest)
	app.OnRecordUpdateRequest(migrations.RoomUsers).BindFunc(members.updateRequest)
	app.OnRecordDeleteRequest(migrations.RoomUsers).BindFunc(members.deleteRequest)
	app.OnRecordCreateRequest(migrations.Messages).BindFunc(messages.createRequest)
	app.OnRecordUpdateRequest(migrations.Messages).BindFunc(messages.updateRequest)
	app.OnRecordDeleteRequest(migrations.Messages).BindFunc(messages.deleteRequest)
	app.OnRecordCreateRequest(migrations.Media).BindFunc(media.createRequest)
	app.OnRecordCreateRequest(migrations.MessageReacts).BindFunc(reactions.createRequest)
	app.OnRecordDeleteRequest(migrations.MessageReacts).BindFunc(reactions.deleteRequest)

	// History pages: attachments and reactions expanded in one query each.
	bindHistoryExpand(app)

	// Moderation: bans, silence, slow mode, reports (invariants and permissions).
	bindModeration(app, settings)

	// Event log: every room change with a realtime type, in its transaction.
	eventLog := newEventLog(app)
	eventLog.bind(app)

	// Search index: every message's text, in its transaction.
	bindSearchIndex(app)

	// Sending a message: its row through a prepared INSERT, the records
	// API's create for a chat user without the create rule's SQL.
	bindSendPath(app, settings)

	// Realtime: every committed change of a chat collection becomes an event.
	events := &events{app: app, order: newSequencer(publish, eventLog.firstSeq), log: eventLog}
	for _, collection := range migrations.AllCollections {
		app.OnRecordAfterCreateSuccess(collection).BindFunc(events.created)
		app.OnRecordAfterUpdateSuccess(collection).BindFunc(events.updated)
		app.OnRecordDelete(collection).BindFunc(events.deleting)
		app.OnRecordAfterDeleteSuccess(collection).BindFunc(events.deleted)
		app.OnRecordAfterDeleteError(collection).BindFunc(events.deleteFailed)
	}

	// Routes.
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		chatRoutes := se.Router.Group("/api/chat").Bind(apis.RequireAuth(settings.UsersCollection))
		chatRoutes.POST("/private", private.getOrCreate)
		chatRoutes.GET("/rooms", overview.rooms)
		chatRoutes.GET("/unread", overview.unread)
		chatRoutes.GET("/threads", threads.list)
		chatRoutes.POST("/rooms/{id}/read", overview.read)
		chatRoutes.GET("/rooms/{id}/receipts", receipts{settings}.list)
		chatRoutes.POST("/rooms/{id}/typing", overview.typing(publish))
		chatRoutes.GET("/sync", syncer{settings}.sync)
		chatRoutes.GET("/search", search{settings}.search)
		return se.Next()
	})

	// Jobs.
	app.Cron().MustAdd("pbchat_orphan_media", settings.OrphanMediaCleanupSchedule, func() {
		if n, err := deleteOrphanMedia(app, settings.OrphanMediaTTL); err != nil {
			app.Logger().Error("pbchat: orphan media clean-up", "error", err, "deleted", n)
		}
	})
	app.Cron().MustAdd(EventLogPruneJob, "7 * * * *", func() {
		if n, err := pruneEventLog(app, settings.EventRetention); err != nil {
			app.Logger().Error("pbchat: event log pruning", "error", err, "deleted", n)
		}
	})
}
