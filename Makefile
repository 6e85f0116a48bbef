# The test command the README and CI use.
.PHONY: test demo build fuzz
test:
	go test -race -count=1 -timeout 45m ./...

demo:
	go run ./cmd/exactly demo

build:
	go build -o bin/exactly ./cmd/exactly
