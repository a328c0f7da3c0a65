package chat

import "time"

// DefaultNATSSubjectPrefix starts every subject pbchat publishes on.
const DefaultNATSSubjectPrefix = "pbchat"

// NATSConfig joins pbchat nodes over NATS: the writer publishes every room
// event once, realtime nodes deliver it to the clients they hold. Left
// empty, pbchat runs in one process and never connects to NATS.
type NATSConfig struct {
	// URL of the NATS server(s), comma-separated (nats://127.0.0.1:4222). "" = no NATS.
	URL string
	// SubjectPrefix starts every subject. Default "pbchat".
	SubjectPrefix string
	// PresenceTimeout is how long the writer counts a realtime node's users
	// as online without hearing from the node; nodes report every third of
	// it. Default 45s.
	PresenceTimeout time.Duration
}

// PresenceExpiry is PresenceTimeout, with its default.
func (c NATSConfig) PresenceExpiry() time.Duration {
	if c.PresenceTimeout <= 0 {
		return 45 * time.Second
	}
	return c.PresenceTimeout
}

// PresenceInterval is how often a realtime node reports who is online on it.
func (c NATSConfig) PresenceInterval() time.Duration { return c.PresenceExpiry() / 3 }

// Prefix is the subject prefix, with its default.
func (c NATSConfig) Prefix() string {
	if c.SubjectPrefix == "" {
		return DefaultNATSSubjectPrefix
	}
	return c.SubjectPrefix
}
