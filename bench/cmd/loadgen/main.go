// Command loadgen sends seeded DogStatsD traffic over UDP to a veneur-lite
// (or any DogStatsD server) on 127.0.0.1, at a target rate, for a bounded
// time, and prints what it sent.
//
// Examples:
//
//	# 1M metrics/s of packed 1432-byte datagrams for 5 s, the cheapest sender
//	go run ./bench/cmd/loadgen -addr 127.0.0.1:8125 -rate 1e6 -duration 5s
//
//	# the real datadog-go v5 client, high tag cardinality, counters only
//	go run ./bench/cmd/loadgen -mode datadog-go -rate 200000 -tag-values 1000 -mix c:1
//
// Compare "sent" with what the server reports (e.g. the count of a
// loadgen.counter.* series, or veneur.listener.metrics_received) to see loss.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/veneur-lite/veneur-lite/bench/loadgen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgen.Config
	mode := fs.String("mode", string(loadgen.ModeRaw), "raw (prebuilt packed datagrams) or datadog-go (the real client)")
	mix := fs.String("mix", loadgen.DefaultMix.String(), "relative weight per type: c, g, h, ms, d, s")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8125", "DogStatsD UDP address; only 127.0.0.1 is accepted")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "RNG seed: the same flags send the same traffic")
	fs.IntVar(&cfg.Names, "names", 100, "distinct metric names, shared among the types of -mix")
	fs.IntVar(&cfg.TagValues, "tag-values", 10, "distinct values per tag key")
	fs.IntVar(&cfg.TagsPerMetric, "tags", 3, "tags per line (0 for none)")
	fs.IntVar(&cfg.PacketSize, "packet-size", 1432, "bytes per datagram at most")
	fs.IntVar(&cfg.Sockets, "sockets", 32, "UDP sockets (source ports) to rotate over, like that many applications")
	fs.Float64Var(&cfg.Rate, "rate", 100_000, "target metrics per second; 0 = as fast as possible")
	fs.DurationVar(&cfg.Duration, "duration", 0, fmt.Sprintf("how long to send (default 1s, at most %v)", loadgen.MaxDuration))
	fs.Int64Var(&cfg.MaxMetrics, "max-metrics", 0, "stop after this many metrics (default rate × duration)")
	fs.BoolVar(&cfg.ClientAggregation, "client-aggregation", false, "datadog-go mode: keep the client's aggregation on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadgen: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg.Mode = loadgen.Mode(*mode)
	if cfg.TagsPerMetric == 0 { // in the Config, 0 means "the default"
		cfg.TagsPerMetric = loadgen.NoTags
	}
	var err error
	if cfg.Mix, err = loadgen.ParseMix(*mix); err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 2
	}

	res, err := loadgen.Run(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "sent %d metrics in %d datagrams (%d bytes) in %v: %.0f metrics/s\n",
		res.Metrics, res.Packets, res.Bytes, res.Elapsed.Round(1e6), res.Rate())
	fmt.Fprintf(stdout, "by type:")
	for t, n := range res.ByType {
		if n > 0 {
			fmt.Fprintf(stdout, " %s=%d", loadgen.MetricType(t), n)
		}
	}
	fmt.Fprintf(stdout, "\ncountable (counter sums + histogram counts): %d\n", res.Countable())
	if res.SendErrors > 0 || res.ClientDroppedPayloads > 0 {
		fmt.Fprintf(stdout, "send errors: %d, datagrams dropped in the client: %d\n", res.SendErrors, res.ClientDroppedPayloads)
	}
	if res.SenderCPU > 0 && res.Metrics > 0 {
		fmt.Fprintf(stdout, "sender CPU: %v (%.0f ns/metric)\n", res.SenderCPU.Round(1e6), float64(res.SenderCPU.Nanoseconds())/float64(res.Metrics))
	}
	return 0
}
