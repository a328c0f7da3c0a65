package migrations

import (
	"fmt"
	"slices"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
)

// List returns pbchat's migrations for one app's settings.
//
// They are a list of their own rather than entries of the process-global
// core.AppMigrations: a global migration cannot see the Config of the app it
// runs for, and two apps in one process may configure pbchat differently.
// They are recorded in the app's _migrations table like any other, which
// PocketBase's `migrate history-sync` clears of every migration outside its
// global list, pbchat's included: each of them therefore finds its work done
// when it runs again (the next start after such a command) and leaves it be.
func List(settings chat.Settings) core.MigrationsList {
	var list core.MigrationsList
	list.Register(
		func(app core.App) error { return initSchema(app, settings) },
		func(app core.App) error { return deleteCollections(app) },
		"1764000000_pbchat_init.go",
	)
	list.Register(protectAvatar, unprotectAvatar, protectedAvatarMigration)
	list.Register(func(app core.App) error {
		if app.HasTable(EpochsTable) {
			// Created before the history was cleared: another first epoch
			// (at seq 1) would end the real one's range, and its cursors
			// would answer reset.
			return nil
		}
		return createEventLog(app)
	}, dropEventLog, eventLogMigration)
	list.Register(createSearchIndex, dropSearchIndex, searchMigration)
	list.Register(func(app core.App) error { return createNotifications(app, settings) }, dropNotifications, notificationsMigration)
	list.Register(createPresence, dropPresence, presenceMigration)
	list.Register(func(app core.App) error { return addThreads(app, settings.UsersCollection) }, dropThreads, threadsMigration)
	list.Register(func(app core.App) error { return addPinsAndSystem(app, settings) }, removePinsAndSystem, pinsMigration)
	list.Register(func(app core.App) error { return createModeration(app, settings) }, dropModeration, moderationMigration)
	list.Register(addOverviewIndex, removeOverviewIndex, overviewIndexMigration)
	list.Add(&core.Migration{
		File: "1764000001_pbchat_settings_sync.go",
		Up:   func(app core.App) error { return syncSettings(app, settings) },
		ReapplyCondition: func(app core.App, _ *core.MigrationsRunner, _ string) (bool, error) {
			return settingsDiffer(app, settings)
		},
	})
	return list
}

// Run applies every pending pbchat migration to app.
func Run(app core.App, settings chat.Settings) error {
	if _, err := core.NewMigrationsRunner(app, List(settings)).Up(); err != nil {
		return fmt.Errorf("pbchat: migrations: %w", err)
	}
	return nil
}

func initSchema(app core.App, settings chat.Settings) error {
	installed, err := collectionsInstalled(app)
	if err != nil || installed {
		// Installed, and this runs again because the migration history was
		// cleared: the collections hold data, and the operator may have
		// turned the batch API off since.
		return err
	}
	if err := createCollections(app, settings); err != nil {
		return err
	}
	// The spec's group-of-three flow is one /api/batch request; PocketBase
	// ships with the batch API off. Turned on once, at install: an operator
	// who turns it off later is not overridden.
	s := app.Settings()
	if !s.Batch.Enabled {
		s.Batch.Enabled = true
		if err := app.Save(s); err != nil {
			return fmt.Errorf("pbchat: enable batch API: %w", err)
		}
	}
	return nil
}

// settingsDiffer reports whether the stored schema's limits differ from settings.
func settingsDiffer(app core.App, settings chat.Settings) (bool, error) {
	text, file, err := limitFields(app)
	if err != nil {
		return false, err
	}
	return text.Max != settings.MaxMessageLength || file.MaxSize != settings.MaxMediaSize ||
		!slices.Equal(file.MimeTypes, settings.MediaTypes), nil
}

// syncSettings carries Config limits that live in the schema (message length,
// media size and types) into the collections, so a changed Config takes effect on restart.
func syncSettings(app core.App, settings chat.Settings) error {
	text, file, err := limitFields(app)
	if err != nil {
		return err
	}
	if text.Max != settings.MaxMessageLength {
		text.Max = settings.MaxMessageLength
		if err := app.Save(text.collection); err != nil {
			return fmt.Errorf("pbchat: update %s.text max: %w", Messages, err)
		}
	}
	if file.MaxSize != settings.MaxMediaSize || !slices.Equal(file.MimeTypes, settings.MediaTypes) {
		file.MaxSize = settings.MaxMediaSize
		file.MimeTypes = slices.Clone(settings.MediaTypes)
		if err := app.Save(file.collection); err != nil {
			return fmt.Errorf("pbchat: update %s.file maxSize and mimeTypes: %w", Media, err)
		}
	}
	return nil
}

type textLimit struct {
	*core.TextField
	collection *core.Collection
}

type fileLimit struct {
	*core.FileField
	collection *core.Collection
}

func limitFields(app core.App) (textLimit, fileLimit, error) {
	messages, err := app.FindCollectionByNameOrId(Messages)
	if err != nil {
		return textLimit{}, fileLimit{}, fmt.Errorf("pbchat: %s: %w", Messages, err)
	}
	media, err := app.FindCollectionByNameOrId(Media)
	if err != nil {
		return textLimit{}, fileLimit{}, fmt.Errorf("pbchat: %s: %w", Media, err)
	}
	text, ok := messages.Fields.GetByName("text").(*core.TextField)
	if !ok {
		return textLimit{}, fileLimit{}, fmt.Errorf("pbchat: %s.text is not a text field", Messages)
	}
	file, ok := media.Fields.GetByName("file").(*core.FileField)
	if !ok {
		return textLimit{}, fileLimit{}, fmt.Errorf("pbchat: %s.file is not a file field", Media)
	}
	return textLimit{text, messages}, fileLimit{file, media}, nil
}
