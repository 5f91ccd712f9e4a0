# Convenience targets; CI runs .ci/run.
.PHONY: build run test test-race bench fuzz lint

build:
	go build -o bin/veneur-lite ./cmd/veneur-lite

run:
	go run ./cmd/veneur-lite

test:
	go test -count=1 ./...

test-race:
	go test -race -count=1 ./...

bench:
	go test ./listener ./aggregate ./sinks/... ./bench -run '^$$' -bench . -benchmem -count 6

fuzz:
	go test ./listener -run '^$$' -fuzz FuzzParse -fuzztime 60s

lint:
	gofmt -l . && go vet ./...
