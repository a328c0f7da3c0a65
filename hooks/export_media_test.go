package hooks

// DeleteOrphanMedia is deleteOrphanMedia, the pbchat_orphan_media job's work.
var DeleteOrphanMedia = deleteOrphanMedia
