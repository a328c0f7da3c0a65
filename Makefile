# Every entry point pins the Go toolchain: PocketBase v0.40 needs Go 1.27 and
# a machine with an older Go and GOTOOLCHAIN=local fetches it this way.
export GOTOOLCHAIN := go1.27.3

ADDR ?= 127.0.0.1:8090
DATA ?= pb_data

.PHONY: serve demo web test test-go test-js test-web screenshots bench-realtime soak chaos fuzz bench bench-quick build clean

## serve: the web chat with demo data on http://$(ADDR) (pb_public/ is served from the repo root)
serve: web demo
	go run . serve --http $(ADDR) --dir $(DATA)

## web: build the web client into pb_public/ (the PocketBase JS SDK comes from npm)
web: web/node_modules/.package-lock.json
	cd web && npm run build

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

## demo: fill $(DATA) with demo users, rooms and messages
demo:
	go run . chat demo --dir $(DATA)

## test: every test (Go, the JS SDK suite, the web client in Chromium)
test: test-go test-js test-web

test-go:
	go vet ./...
	go test -count=1 ./...

## test-js: the seed's flows, realtime and delivery through the official JS SDK, in one process and in a cluster (writer, 2 nodes, NATS)
test-js:
	cd e2e/js && npm ci && npm test

## bench: pbchat vs stock PocketBase vs the SQLite floor, full run (~8 min); rewrites BENCHMARKS.md
bench:
	go run ./bench/cmd/pbchatbench -full -out BENCHMARKS.md

## bench-quick: the same scenarios at CI size (~1.5 min); prints the tables only
bench-quick:
	go run ./bench/cmd/pbchatbench -quick

## bench-realtime: fan-out of one message, stock PocketBase vs pbchat
bench-realtime:
	go test ./bench -run '^$$' -bench Fanout -benchtime 30x -timeout 30m

## test-web: the web client in Debian's Chromium (Playwright), two users on a fresh server, a restart included
test-web: web
	cd e2e/web && npm ci --no-audit --no-fund && npm test

## screenshots: rewrite docs/screenshots/*.png (wants fonts-noto-color-emoji for the emoji)
screenshots: web
	cd e2e/web && npm ci --no-audit --no-fund && npm run screenshots

## soak: 2 minutes, 200 users, 1,000 realtime connections (figures: BENCHMARKS.md)
soak:
	PBCHAT_SOAK=2m go test ./e2e -run '^TestSoak$$' -count=1 -v -timeout 30m

## chaos: 60 clients through restarts, a NATS outage and cut connections, both topologies (figures: BENCHMARKS.md)
chaos:
	PBCHAT_CHAOS=$${PBCHAT_CHAOS:-20s} go test ./e2e -run '^TestChaos$$' -count=1 -v -timeout 30m

## fuzz: a short run of every fuzz target (seed corpora in internal/chat/testdata/fuzz)
fuzz:
	for f in FuzzReactionValidate FuzzCheckPermissionChange FuzzValidateMessageText; do \
		go test ./internal/chat -run '^$$' -fuzz="^$$f$$" -fuzztime=8s || exit 1; \
	done

build: web
	go build -o pbchat .

clean:
	rm -rf $(DATA) pbchat pb_public
