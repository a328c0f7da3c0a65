// Package chat holds pbchat's rules as plain Go: permission sets and their
// defaults per room type, who may change whose permissions, reaction and
// message validation. It imports nothing from PocketBase so that every rule
// can be read, table-tested and fuzzed on its own.
package chat

import (
	"fmt"
	"slices"
	"time"
)

// Room types, the values of chat_rooms.type.
const (
	RoomPrivateMessages = "private_messages"
	RoomGroup           = "group"
	RoomChannel         = "channel"
)

// RoomTypes lists every room type in a stable order.
var RoomTypes = []string{RoomPrivateMessages, RoomGroup, RoomChannel}

// Defaults used when a Settings field is left at its zero value.
const (
	DefaultUsersCollection   = "users"
	DefaultMaxMessageLength  = 4000
	DefaultMaxAttachments    = 10
	DefaultMaxMediaSize      = 20 << 20
	DefaultOrphanMediaTTL    = 24 * time.Hour
	DefaultCustomReactionLen = 32
	DefaultEventRetention    = 30 * 24 * time.Hour
)

// DefaultMediaTypes is the default allow-list of chat attachments: raster
// images, PDF, plain text, common audio and video, office documents (OOXML,
// legacy Microsoft Office, OpenDocument, RTF, CSV) and zip archives. HTML,
// SVG and executables are left out: a member's upload must not run as a page.
var DefaultMediaTypes = []string{
	"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/heic",
	"application/pdf", "text/plain", "text/csv", "text/rtf",
	"audio/mpeg", "audio/ogg", "audio/wav", "audio/webm", "audio/aac", "audio/mp4", "audio/x-m4a", "audio/flac", "audio/amr",
	"video/mp4", "video/webm", "video/ogg", "video/quicktime", "video/3gpp", "video/mpeg",
	"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
	"application/vnd.oasis.opendocument.presentation",
	"application/zip",
}

// RoomDefaults is the permission pair a room type hands out.
type RoomDefaults struct {
	// Creator is what the creator of a room of this type holds.
	Creator Permissions
	// Member is what a member added without explicit permissions holds
	// (and what a user joining a public room holds).
	Member Permissions
}

// Settings configures pbchat. Its zero value is the spec's defaults;
// chatmodule.Config is an alias of it.
type Settings struct {
	// UsersCollection is the auth collection chat users live in. Default "users".
	UsersCollection string

	// RoomDefaults overrides the permissions per room type, keyed by type
	// ("private_messages", "group", "channel"). A type left out keeps the
	// spec's default; a nil Creator or Member inside an entry keeps that half.
	RoomDefaults map[string]RoomDefaults

	// Reactions constrains chat_message_reactions.reaction. Default: one emoji.
	Reactions ReactionRules

	// MaxMessageLength is the longest chat_messages.text in characters. Default 4000.
	MaxMessageLength int

	// MaxAttachments is how many media one message may carry. Default 10.
	MaxAttachments int

	// MaxMediaSize is the largest chat_media.file in bytes. Default 20 MiB.
	MaxMediaSize int64

	// MediaTypes is the allow-list of chat_media.file MIME types, as
	// PocketBase detects them from the content (exact types: no wildcards;
	// see DefaultMediaTypes). Pictures among them get thumbnails; other files
	// are downloaded with ?download=1. Default DefaultMediaTypes.
	MediaTypes []string

	// OrphanMediaTTL is how long uploaded media that no message uses is kept.
	// Default 24h.
	OrphanMediaTTL time.Duration

	// OrphanMediaCleanupSchedule is the cron expression of the orphan media
	// clean-up job. Default every 10 minutes: "*/10 * * * *".
	OrphanMediaCleanupSchedule string

	// EventRetention is how long the event log keeps a room change for
	// GET /api/chat/sync. A client whose cursor is older gets "reset": true
	// and reloads its rooms. Default 30 days.
	EventRetention time.Duration

	// RateLimits caps chat writes per user (per auth record, not per IP)
	// and sign-ups, sign-ins, account e-mails and realtime connects per IP.
	// Default: on, with the limits documented on RateLimits.
	RateLimits RateLimits

	// NATS joins several pbchat nodes (one writer, realtime nodes) over NATS.
	// Empty: one process, no NATS.
	NATS NATSConfig

	// Notifications configures Web Push and webhook notifications of new
	// messages (NotificationSettings). Default: on, 10s coalescing window.
	Notifications NotificationSettings
}

// WithDefaults returns a copy of s where every zero field holds its default.
// It fails on settings that cannot work (an unknown room type, a negative limit).
func (s Settings) WithDefaults() (Settings, error) {
	out := s
	if out.UsersCollection == "" {
		out.UsersCollection = DefaultUsersCollection
	}
	if out.MaxMessageLength == 0 {
		out.MaxMessageLength = DefaultMaxMessageLength
	}
	if out.MaxAttachments == 0 {
		out.MaxAttachments = DefaultMaxAttachments
	}
	if out.MaxMediaSize == 0 {
		out.MaxMediaSize = DefaultMaxMediaSize
	}
	if len(out.MediaTypes) == 0 {
		out.MediaTypes = slices.Clone(DefaultMediaTypes)
	} else {
		out.MediaTypes = slices.Clone(out.MediaTypes)
	}
	if out.OrphanMediaTTL == 0 {
		out.OrphanMediaTTL = DefaultOrphanMediaTTL
	}
	if out.OrphanMediaCleanupSchedule == "" {
		out.OrphanMediaCleanupSchedule = "*/10 * * * *"
	}
	if out.EventRetention == 0 {
		out.EventRetention = DefaultEventRetention
	}
	if out.MaxMessageLength < 0 || out.MaxAttachments < 0 || out.MaxMediaSize < 0 || out.OrphanMediaTTL < 0 || out.EventRetention < 0 {
		return out, fmt.Errorf("pbchat: limits must not be negative")
	}

	defaults := make(map[string]RoomDefaults, len(RoomTypes))
	for _, roomType := range RoomTypes {
		// Copies, so that a caller editing the result in place cannot
		// change the package's defaults (AllPermissions among them).
		spec := specRoomDefaults[roomType]
		defaults[roomType] = RoomDefaults{Creator: slices.Clone(spec.Creator), Member: slices.Clone(spec.Member)}
	}
	for roomType, override := range s.RoomDefaults {
		base, ok := defaults[roomType]
		if !ok {
			return out, fmt.Errorf("pbchat: RoomDefaults: unknown room type %q", roomType)
		}
		if override.Creator != nil {
			base.Creator = slices.Clone(override.Creator)
		}
		if override.Member != nil {
			base.Member = slices.Clone(override.Member)
		}
		if err := base.Creator.Validate(); err != nil {
			return out, fmt.Errorf("pbchat: RoomDefaults[%s].Creator: %w", roomType, err)
		}
		if err := base.Member.Validate(); err != nil {
			return out, fmt.Errorf("pbchat: RoomDefaults[%s].Member: %w", roomType, err)
		}
		defaults[roomType] = base
	}
	out.RoomDefaults = defaults

	rateLimits, err := out.RateLimits.withDefaults()
	if err != nil {
		return out, fmt.Errorf("pbchat: RateLimits: %w", err)
	}
	out.RateLimits = rateLimits

	reactions, err := out.Reactions.withDefaults()
	if err != nil {
		return out, fmt.Errorf("pbchat: Reactions: %w", err)
	}
	out.Reactions = reactions

	notifications, err := out.Notifications.withDefaults()
	if err != nil {
		return out, fmt.Errorf("pbchat: Notifications: %w", err)
	}
	out.Notifications = notifications

	return out, nil
}

// DefaultsFor returns the permission defaults of a room type.
// Settings must have gone through WithDefaults.
func (s Settings) DefaultsFor(roomType string) RoomDefaults {
	return s.RoomDefaults[roomType]
}
