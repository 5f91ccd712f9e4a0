// Package top is "veneur-lite top": which metrics are eating the memory
// of a running instance, refreshed every second, like the Datadog
// Agent's "dogstatsd top".
//
//	veneur-lite top [-addr 127.0.0.1:8127] [-n 20] [-sort series|samples|shed] [-interval 1s]
//	veneur-lite top -once    # one plain snapshot, for scripts; exit 1 when unreadable
//	veneur-lite top -json    # the endpoint's JSON, once
//
// It reads GET /debug/series?n=N&sort=S from the instance's http_address
// (host:port, or an http:// or https:// URL; -ca-file, -cert-file,
// -key-file and -server-name are the config's tls: block for https).
// The endpoint answers clients on the instance's own host only, unless
// its config sets enable_profiling: true (false turns it off): run top on
// that host, or expect a 403 message.
//
// Data path:
//
//	Client.Fetch ──aggregate.SeriesStats──▶ Render ──lines──▶ -once/-json: stdout
//	     ▲                                                └──▶ live: screen.draw (ANSI redraw)
//	     └──── every -interval, and at once after s, + or - ◀── keys (stdin, raw mode)
//
// The screen, from the top (a 100-column tmux pane; testdata of
// cmd/veneur-lite has the one its test captured):
//
//	veneur-lite top  127.0.0.1:8127  interval 14:03:00 +12.4s
//	series: 111 of 2.0M (100 per name)  samples: 850 (68.5/s)
//	shed: 30 (max_series_per_name 30)
//
//	top 3 of 3 names by series (-n 20)   [s] sort  [+/-] n  [q] quit
//	NAME         SERIES  SAMPLES  SAMPLES/S    SHED  TAG KEYS:VALUES
//	top.hundred     100      200       16.1      30  user_id:100 env:1
//	top.ten          10       50        4.0       0  shard:10 env:1
//	top.one           1      600       48.4       0  env:1
//
// The header: the interval under way (its start on the instance's
// clock, and the time since), its live series against max_series and
// max_series_per_name, the samples received in it and their average
// rate, and the samples shed by the cardinality limits, by reason.
//
// The table, one line per metric name: SERIES its live series, SAMPLES
// and SAMPLES/S the samples it received in the interval (the rate is
// averaged over the interval so far), SHED its samples dropped by the
// limits, and TAG KEYS:VALUES its tag keys with their distinct values,
// most first: the ones that multiply its series. Counts are exact below
// 1000, then 1.2k, 12.3k, 123k, 3.4M.
//
// Keys: s cycles the order (series → samples → shed), + and - change n
// by 5, q or Ctrl-C quits and leaves the terminal cleared, its mode
// restored. The table also stops at the screen's height, and long
// names lose their middle ("api.requests.…errors.count").
//
// When the instance cannot be read (down, or 403), the screen says why
// in one message, wrapped to the width, and top retries every interval.
// When stdout is not a terminal, top prints a plain snapshot every
// interval, a blank line after each, until interrupted (like top -b);
// use -once for just one.
package top
