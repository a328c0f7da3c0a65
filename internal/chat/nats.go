package chat

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
}

// Prefix is the subject prefix, with its default.
func (c NATSConfig) Prefix() string {
	if c.SubjectPrefix == "" {
		return DefaultNATSSubjectPrefix
	}
	return c.SubjectPrefix
}
