package chatmodule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/realtime"
)

// NewRealtimeCommand is `realtime`: a realtime node that holds clients'
// realtime connections, gets room events over NATS and asks the writer to
// authorise subscriptions. It opens no database, so run it outside
// PocketBase's command tree (main.go does, for `pbchat realtime`).
func NewRealtimeCommand() *cobra.Command {
	var writer, natsURL, prefix, addr string
	var idle, lifetime, presence time.Duration
	command := &cobra.Command{
		Use:          "realtime",
		Short:        "Run a pbchat realtime node (no database; events over NATS)",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if writer == "" || natsURL == "" {
				return errors.New("--writer and --nats are required")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return RunRealtimeNode(ctx, realtime.NodeConfig{Writer: writer, IdleTimeout: idle, MaxLifetime: lifetime},
				chat.NATSConfig{URL: natsURL, SubjectPrefix: prefix, PresenceTimeout: presence}, addr)
		},
	}
	command.Flags().StringVar(&writer, "writer", "", "base URL of the pbchat app that owns the database, e.g. http://127.0.0.1:8090")
	command.Flags().StringVar(&natsURL, "nats", "", "NATS server URL(s), e.g. nats://127.0.0.1:4222")
	command.Flags().StringVar(&prefix, "subject-prefix", chat.DefaultNATSSubjectPrefix, "NATS subject prefix (as the writer's Config.NATS.SubjectPrefix)")
	command.Flags().StringVar(&addr, "http", "127.0.0.1:8091", "address to serve /api/realtime on")
	command.Flags().DurationVar(&idle, "idle-timeout", 5*time.Minute, "close a connection that got no event for this long (as PocketBase)")
	command.Flags().DurationVar(&lifetime, "max-lifetime", 30*time.Minute, "close every connection at this age (as PocketBase); the SDKs reconnect")
	command.Flags().DurationVar(&presence, "presence-timeout", chat.NATSConfig{}.PresenceExpiry(), "as the writer's Config.NATS.PresenceTimeout: the node reports who is online every third of it")
	return command
}

// RunRealtimeNode serves a realtime node on addr until ctx ends.
func RunRealtimeNode(ctx context.Context, config realtime.NodeConfig, natsConfig chat.NATSConfig, addr string) error {
	if config.Logger == nil {
		config.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	broker, err := realtime.ConnectNATSNode(natsConfig, "pbchat-realtime-"+addr, config.Logger)
	if err != nil {
		return err
	}
	defer broker.Close()
	config.Broker = broker
	node, err := realtime.NewNode(config)
	if err != nil {
		return err
	}
	defer node.Close()

	server := &http.Server{Addr: addr, Handler: node.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 1)
	go func() { errs <- server.ListenAndServe() }()
	config.Logger.Info("pbchat realtime node", slog.String("http", addr), slog.String("writer", config.Writer), slog.String("nats", natsConfig.URL))
	select {
	case err := <-errs:
		return fmt.Errorf("pbchat realtime node: %w", err)
	case <-ctx.Done():
		// Open streams never finish by themselves: close them, the SDKs reconnect.
		return server.Close()
	}
}
