# Every entry point pins the Go toolchain: PocketBase v0.40 needs Go 1.27 and
# a machine with an older Go and GOTOOLCHAIN=local fetches it this way.
export GOTOOLCHAIN := go1.27.3

ADDR ?= 127.0.0.1:8090
DATA ?= pb_data

.PHONY: serve demo test test-go test-js bench-realtime build clean

## serve: the app with demo data on http://$(ADDR)
serve: demo
	go run . serve --http $(ADDR) --dir $(DATA)

## demo: fill $(DATA) with demo users, rooms and messages
demo:
	go run . chat demo --dir $(DATA)

## test: every test (Go, then the JS SDK suite)
test: test-go test-js

test-go:
	go vet ./...
	go test -count=1 ./...

## test-js: the seed's flows and realtime through the official JS SDK
test-js:
	cd e2e/js && npm ci && npm test

## bench-realtime: fan-out of one message, stock PocketBase vs pbchat
bench-realtime:
	go test ./bench -run '^$$' -bench Fanout -benchtime 30x -timeout 30m

build:
	go build -o pbchat .

clean:
	rm -rf $(DATA) pbchat
