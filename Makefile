# Every entry point pins the Go toolchain: PocketBase v0.40 needs Go 1.27 and
# a machine with an older Go and GOTOOLCHAIN=local fetches it this way.
export GOTOOLCHAIN := go1.27.3

ADDR ?= 127.0.0.1:8090
DATA ?= pb_data

.PHONY: serve demo test test-go build clean

## serve: the app with demo data on http://$(ADDR)
serve: demo
	go run . serve --http $(ADDR) --dir $(DATA)

## demo: fill $(DATA) with demo users, rooms and messages
demo:
	go run . chat demo --dir $(DATA)

## test: every test
test: test-go

test-go:
	go vet ./...
	go test -count=1 ./...

build:
	go build -o pbchat .

clean:
	rm -rf $(DATA) pbchat
