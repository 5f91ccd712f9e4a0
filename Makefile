# Convenience targets; CI runs .ci/run.
.PHONY: build run test test-race bench bench-pipeline bench-compare bench-import fuzz lint

build:
	go build -o bin/veneur-lite ./cmd/veneur-lite

run:
	go run ./cmd/veneur-lite

test:
	go test -count=1 ./...

test-race:
	go test -race -count=1 ./...

bench:
	go test ./listener ./aggregate ./sinks/... ./forward/... ./importsrv ./bench -run '^$$' -bench 'Parse|Push|Flush|Encode|Import|Decode' -benchmem -count 6

# End-to-end UDP throughput and loss sweep (a few minutes); see bench/RESULTS.md.
bench-pipeline:
	go test ./bench -run '^$$' -bench PipelineUDP -benchtime 1x -count 3

# veneur-lite beside a do-nothing receiver, loss counted end to end at the
# sink, in a private network namespace (~11 minutes; see bench/README.md).
# make bench-compare ARGS=-quick is a ~70 s development run.
bench-compare:
	go build -o bin/veneur-lite ./cmd/veneur-lite
	go build -o bin/nullrecv ./bench/cmd/nullrecv
	go build -o bin/bench-compare ./bench/cmd/compare
	bin/bench-compare -veneur-lite bin/veneur-lite -nullrecv bin/nullrecv $(ARGS)

# What a global spends to merge forwarded digests: real forward batches from
# 10, 100 and 1,000 simulated locals posted to the built binary, 3 runs each
# (~20 s; see bench/README.md). The sharded tier check (~45 s a run):
#   make bench-import ARGS='-globals 4 -locals 1000 -series 10000 -reps 1'
bench-import:
	go build -o bin/veneur-lite ./cmd/veneur-lite
	go build -o bin/bench-import ./bench/cmd/importbench
	bin/bench-import -veneur-lite bin/veneur-lite $(ARGS)

fuzz:
	go test ./listener -run '^$$' -fuzz FuzzParse -fuzztime 60s -fuzzminimizetime 5s
	go test ./wire -run '^$$' -fuzz FuzzDecode -fuzztime 60s -fuzzminimizetime 5s

# golangci-lint v2 with .golangci.yml; install it once with
#   go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
lint:
	test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	go vet ./...
	golangci-lint run ./...
