// Command pbchatload holds realtime clients for the capacity scenario
// (bench.RunCapacity): it reads one bench.SSEClientConfig line on stdin,
// connects the clients as the SDKs do, reports on stdout (see
// bench.RunSSEClients), and holds them until stdin closes. It takes
// -sse-client as its first argument too, as pbchatbench does.
package main

import (
	"fmt"
	"os"

	"github.com/pbchat/pbchat/bench"
)

func main() {
	bench.RaiseFileLimit()
	if err := bench.RunSSEClients(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pbchatload:", err)
		os.Exit(1)
	}
}
