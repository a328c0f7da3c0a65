package hooks

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// events turns committed writes of the chat collections into chat.Events.
type events struct {
	app   core.App   // outside any transaction: reads what was committed before a delete
	order *sequencer // publishes in log order
	log   *eventLog  // the cursors of logged changes

	// deletedRooms holds the room of a record being deleted, resolved before
	// the delete (a cascade removes the message a reaction pointed at).
	deletedRooms sync.Map
	// roomsDeleting holds rooms whose deletion is cascading: what goes with
	// them reaches stock subscribers, while room topics hear one room.deleted.
	roomsDeleting sync.Map
}

var eventTypes = map[string]map[string]string{
	migrations.Rooms:         {"update": chat.EventRoomUpdated, "delete": chat.EventRoomDeleted},
	migrations.RoomUsers:     {"create": chat.EventMemberJoined, "update": chat.EventMemberUpdated, "delete": chat.EventMemberLeft},
	migrations.Messages:      {"create": chat.EventMessageCreated, "update": chat.EventMessageUpdated, "delete": chat.EventMessageDeleted},
	migrations.MessageReacts: {"create": chat.EventReactionCreated, "delete": chat.EventReactionDeleted},
}

func (h *events) created(e *core.RecordEvent) error { h.emit(e.Record, "create", ""); return e.Next() }
func (h *events) updated(e *core.RecordEvent) error { h.emit(e.Record, "update", ""); return e.Next() }

func (h *events) deleting(e *core.RecordEvent) error {
	room, err := h.roomOf(h.app, e.Record)
	if err != nil {
		return err
	}
	h.deletedRooms.Store(e.Record, room)
	if e.Record.Collection().Name == migrations.Rooms {
		h.roomsDeleting.Store(room, true)
	}
	return e.Next()
}

func (h *events) deleted(e *core.RecordEvent) error {
	room, _ := h.deletedRooms.LoadAndDelete(e.Record)
	roomID, _ := room.(string)
	h.emit(e.Record, "delete", roomID)
	switch e.Record.Collection().Name {
	case migrations.Rooms:
		h.roomsDeleting.Delete(roomID)
		h.log.deletionDone(migrations.Rooms, roomID)
	case migrations.Messages:
		h.log.deletionDone(migrations.Messages, e.Record.Id)
	}
	return e.Next()
}

func (h *events) deleteFailed(e *core.RecordErrorEvent) error {
	if room, ok := h.deletedRooms.LoadAndDelete(e.Record); ok && e.Record.Collection().Name == migrations.Rooms {
		h.roomsDeleting.Delete(room)
	}
	h.log.deletionDone(e.Record.Collection().Name, e.Record.Id)
	return e.Next()
}

// emit publishes one record change; room is known already for deletes.
func (h *events) emit(record *core.Record, action, room string) {
	collection := record.Collection().Name
	// First, whatever happens below: the log's cursor of this change
	// (none for changes the log does not keep, such as media).
	var logged cursor
	if eventTypes[collection][action] != "" {
		logged = h.log.pop(record)
	}
	event, ok, err := h.event(record, action, room)
	if err != nil {
		h.app.Logger().Error("pbchat realtime: "+collection+" "+action, "id", record.Id, "error", err)
	}
	if !ok {
		h.order.skip(logged)
		return
	}
	if logged.epoch != "" {
		event.Cursor = logged.String()
		h.order.submit(logged, true, event)
		return
	}
	// A cascade's stock events carry the cursor before the deletion's row.
	var before cursor
	if _, cascading := h.roomsDeleting.Load(event.Room); cascading && collection != migrations.Rooms {
		before = h.log.cascadeCursor(migrations.Rooms, event.Room)
	} else if action == "delete" && collection == migrations.MessageReacts {
		before = h.log.cascadeCursor(migrations.Messages, record.GetString("message"))
	}
	event.Cursor = before.String()
	h.order.submit(before, false, event)
}

// event is the chat.Event of a record change, without its cursor; ok is
// false when it has nobody to go to.
func (h *events) event(record *core.Record, action, room string) (event chat.Event, ok bool, err error) {
	collection := record.Collection().Name
	raw, err := json.Marshal(record.Fresh())
	if err != nil {
		return event, false, fmt.Errorf("encode record: %w", err)
	}
	event = chat.Event{
		Type:       eventTypes[collection][action],
		Collection: collection,
		Action:     action,
		RecordID:   record.Id,
		Record:     raw,
	}
	if collection == migrations.RoomUsers {
		event.Member = record.GetString("user")
	}
	switch {
	case collection == migrations.Media:
		event.Users = []string{record.GetString("uploaded_by")}
	case collection == migrations.Rooms && action == "create":
		// Its members are not following the room yet: address them.
		event.Room = record.Id
		event.Users, err = roomMembers(h.app, record.Id)
	case room != "":
		event.Room = room
	default:
		event.Room, err = h.roomOf(h.app, record)
	}
	if err != nil {
		return event, false, fmt.Errorf("resolve recipients: %w", err)
	}
	if _, cascading := h.roomsDeleting.Load(event.Room); cascading && collection != migrations.Rooms {
		// Room topics hear one room.deleted; stock subscribers get the rest.
		event.Type, event.Member = "", ""
	}
	// None, e.g. for a reaction whose message went in the same cascade:
	// message.deleted says it.
	return event, event.Room != "" || len(event.Users) > 0, nil
}

// roomOf returns the room a chat record belongs to ("" when none or gone).
func (h *events) roomOf(app core.App, record *core.Record) (string, error) {
	switch record.Collection().Name {
	case migrations.Rooms:
		return record.Id, nil
	case migrations.RoomUsers, migrations.Messages:
		return record.GetString("room"), nil
	case migrations.MessageReacts, migrations.MessageMedia:
		var rooms []string
		err := app.DB().Select("room").From(migrations.Messages).
			Where(dbx.HashExp{"id": record.GetString("message")}).Column(&rooms)
		if err != nil || len(rooms) == 0 {
			return "", err
		}
		return rooms[0], nil
	}
	return "", nil
}

func roomMembers(app core.App, roomID string) ([]string, error) {
	var users []string
	err := app.DB().Select("user").From(migrations.RoomUsers).Where(dbx.HashExp{"room": roomID}).Column(&users)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", roomID, err)
	}
	return users, nil
}
