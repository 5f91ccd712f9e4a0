package top

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/veneur-lite/veneur-lite/aggregate"
)

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0"},
		{7, "7"},
		{999, "999"},
		{1000, "1.0k"},
		{1234, "1.2k"},
		{1250, "1.2k"}, // 1.25 rounds to even
		{12_345, "12.3k"},
		{99_949, "99.9k"},
		{99_950, "100k"}, // not "100.0k": three figures at most
		{120_000, "120k"},
		{999_499, "999k"},
		{999_500, "1.0M"}, // not "1000k"
		{3_400_000, "3.4M"},
		{1_000_000_000, "1.0G"},
		{math.MaxUint64, "18.4E"},
	} {
		if got := Count(tc.n); got != tc.want {
			t.Errorf("Count(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestRate(t *testing.T) {
	for _, tc := range []struct {
		r    float64
		want string
	}{
		{0, "0"},
		{-3, "0"},
		{math.NaN(), "0"},
		{0.04, "0.0"},
		{0.24, "0.2"},
		{12.34, "12.3"},
		{99.94, "99.9"},
		{99.95, "100"},
		{850.2, "850"},
		{999.4, "999"},
		{999.5, "1.0k"},
		{80_645.2, "80.6k"},
	} {
		if got := Rate(tc.r); got != tc.want {
			t.Errorf("Rate(%v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestShortenAndFit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		width int
		want  string
	}{
		{"api.requests.errors.count", 0, "api.requests.errors.count"},
		{"api.requests.errors.count", 25, "api.requests.errors.count"},
		{"api.requests.errors.count", 24, "api.requests…rrors.count"},
		{"api.requests.errors.count", 12, "api.re…count"},
		{"api.requests.errors.count", 2, "a…"},
		{"api.requests.errors.count", 1, "…"},
		{"débit.entrée.réseau", 9, "débi…seau"}, // runes, not bytes
	} {
		got := Shorten(tc.name, tc.width)
		if got != tc.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", tc.name, tc.width, got, tc.want)
		}
		if tc.width > 0 && utf8.RuneCountInString(got) > tc.width {
			t.Errorf("Shorten(%q, %d) is %d runes", tc.name, tc.width, utf8.RuneCountInString(got))
		}
	}
	for _, tc := range []struct {
		line  string
		width int
		want  string
	}{
		{"shed: 0", 0, "shed: 0"},
		{"shed: 0", 7, "shed: 0"},
		{"shed: 0", 6, "shed:…"},
		{"entrée", 4, "ent…"},
	} {
		if got := Fit(tc.line, tc.width); got != tc.want {
			t.Errorf("Fit(%q, %d) = %q, want %q", tc.line, tc.width, got, tc.want)
		}
	}
}

func TestTagKeys(t *testing.T) {
	keys := []aggregate.TagKeyStats{{Key: "user_id", Values: 120_000}, {Key: "path", Values: 40}, {Key: "env", Values: 1}}
	for _, tc := range []struct {
		width int
		want  string
	}{
		{0, "user_id:120k path:40 env:1"},
		{26, "user_id:120k path:40 env:1"},
		{25, "user_id:120k path:40 …"},
		{22, "user_id:120k path:40 …"},
		{21, "user_id:120k …"},
		{14, "user_id:120k …"},
		{13, "user_id:120k…"}, // not even one whole key and " …"
		{5, "user…"},
	} {
		if got := tagKeys(keys, tc.width); got != tc.want {
			t.Errorf("width %d: %q, want %q", tc.width, got, tc.want)
		}
	}
	if got := tagKeys(nil, 10); got != "" {
		t.Errorf("no keys: %q", got)
	}
}

// snapshot is a busy instance: a name with a runaway tag, a long name,
// a name shed by the per-name limit.
func snapshot() aggregate.SeriesStats {
	return aggregate.SeriesStats{
		IntervalStart:    time.Date(2026, 5, 4, 14, 3, 0, 0, time.UTC),
		ElapsedSeconds:   12.4,
		LiveSeries:       120_111,
		MaxSeries:        2_000_000,
		MaxSeriesPerName: 100_000,
		Samples:          1_234_567,
		SamplesPerSecond: 99_561.8,
		ShedSamples:      map[string]uint64{"max_series": 0, "max_series_per_name": 4_321},
		TotalNames:       57,
		Names: []aggregate.NameStats{
			{Name: "api.requests", Series: 120_000, Samples: 1_000_000, SamplesPerSecond: 80_645.2, ShedSamples: 4_321,
				TopTagKeys: []aggregate.TagKeyStats{{Key: "user_id", Values: 120_000}, {Key: "path", Values: 40}, {Key: "env", Values: 1}}},
			{Name: "checkout.payment.provider.latency.by_region.histogram", Series: 100, Samples: 234_000, SamplesPerSecond: 18_870.9,
				TopTagKeys: []aggregate.TagKeyStats{{Key: "region", Values: 25}, {Key: "provider", Values: 4}}},
			{Name: "up", Series: 1, Samples: 3, SamplesPerSecond: 0.24},
		},
	}
}

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   func(*aggregate.SeriesStats)
		v    View
		want string
	}{
		{
			name: "plain: nothing cut",
			v:    View{Addr: "127.0.0.1:8127", Sort: "series", N: 20},
			want: `
veneur-lite top  127.0.0.1:8127  interval 14:03:00 +12.4s
series: 120k of 2.0M (100k per name)  samples: 1.2M (99.6k/s)
shed: 4.3k (max_series_per_name 4.3k)

top 3 of 57 names by series (-n 20)
NAME                                                   SERIES  SAMPLES  SAMPLES/S    SHED  TAG KEYS:VALUES
api.requests                                             120k     1.0M      80.6k    4.3k  user_id:120k path:40 env:1
checkout.payment.provider.latency.by_region.histogram     100     234k      18.9k       0  region:25 provider:4
up                                                          1        3        0.2       0`,
		},
		{
			name: "80 columns: the long name loses its middle, tag keys their tail",
			v:    View{Addr: "127.0.0.1:8127", Sort: "series", N: 20, Width: 79, Keys: true},
			want: `
veneur-lite top  127.0.0.1:8127  interval 14:03:00 +12.4s
series: 120k of 2.0M (100k per name)  samples: 1.2M (99.6k/s)
shed: 4.3k (max_series_per_name 4.3k)

top 3 of 57 names by series (-n 20)   [s] sort  [+/-] n  [q] quit
NAME                       SERIES  SAMPLES  SAMPLES/S    SHED  TAG KEYS:VALUES
api.requests                 120k     1.0M      80.6k    4.3k  user_id:120k …
checkout.pay…on.histogram     100     234k      18.9k       0  region:25 …
up                              1        3        0.2       0`,
		},
		{
			name: "120 columns: room for both",
			v:    View{Addr: "127.0.0.1:8127", Sort: "series", N: 20, Width: 119},
			want: `
veneur-lite top  127.0.0.1:8127  interval 14:03:00 +12.4s
series: 120k of 2.0M (100k per name)  samples: 1.2M (99.6k/s)
shed: 4.3k (max_series_per_name 4.3k)

top 3 of 57 names by series (-n 20)
NAME                                                   SERIES  SAMPLES  SAMPLES/S    SHED  TAG KEYS:VALUES
api.requests                                             120k     1.0M      80.6k    4.3k  user_id:120k path:40 env:1
checkout.payment.provider.latency.by_region.histogram     100     234k      18.9k       0  region:25 provider:4
up                                                          1        3        0.2       0`,
		},
		{
			name: "rows bounded by the screen, tag values sampled",
			st:   func(st *aggregate.SeriesStats) { st.TagsSampled = true },
			v:    View{Addr: "https://veneur.internal:8127", Sort: "samples", Rows: 1},
			want: `
veneur-lite top  https://veneur.internal:8127  interval 14:03:00 +12.4s
series: 120k of 2.0M (100k per name)  samples: 1.2M (99.6k/s)
shed: 4.3k (max_series_per_name 4.3k)

top 1 of 57 names by samples
NAME          SERIES  SAMPLES  SAMPLES/S    SHED  TAG KEYS:VALUES
api.requests    120k     1.0M      80.6k    4.3k  user_id:120k path:40 env:1

tag values of the largest names are counted over a sample of their series: at least as many`,
		},
		{
			name: "an idle instance without limits",
			st: func(st *aggregate.SeriesStats) {
				*st = aggregate.SeriesStats{IntervalStart: st.IntervalStart, ElapsedSeconds: 754}
			},
			v: View{Addr: "127.0.0.1:8127", Sort: "shed", N: 5},
			want: `
veneur-lite top  127.0.0.1:8127  interval 14:03:00 +12m34s
series: 0 (no limit)  samples: 0 (0/s)
shed: 0

top 0 of 0 names by shed (-n 5)
NAME  SERIES  SAMPLES  SAMPLES/S    SHED  TAG KEYS:VALUES`,
		},
		{
			name: "one limit only, shed for both reasons",
			st: func(st *aggregate.SeriesStats) {
				st.MaxSeries = 0
				st.ShedSamples = map[string]uint64{"max_series_per_name": 10, "max_series": 2_500}
				st.Names = st.Names[2:]
				st.ElapsedSeconds = 3725
			},
			v: View{Addr: "127.0.0.1:8127", Sort: "series"},
			want: `
veneur-lite top  127.0.0.1:8127  interval 14:03:00 +1h02m05s
series: 120k (100k per name)  samples: 1.2M (99.6k/s)
shed: 2.5k (max_series 2.5k, max_series_per_name 10)

top 1 of 57 names by series
NAME  SERIES  SAMPLES  SAMPLES/S    SHED  TAG KEYS:VALUES
up         1        3        0.2       0`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := snapshot()
			if tc.st != nil {
				tc.st(&st)
			}
			got := strings.Join(Render(st, tc.v), "\n")
			want := strings.TrimPrefix(tc.want, "\n")
			if got != want {
				t.Errorf("got\n%s\n\nwant\n%s", got, want)
			}
		})
	}
}

// TestRenderFitsAnyWidth: no line is wider than the screen, the numeric
// columns line up, and the table keeps its rows.
func TestRenderFitsAnyWidth(t *testing.T) {
	st := snapshot()
	for width := 20; width <= 160; width++ {
		lines := Render(st, View{Addr: "127.0.0.1:8127", Sort: "series", N: 20, Width: width, Keys: true})
		if len(lines) != Chrome(st)+len(st.Names) {
			t.Fatalf("width %d: %d lines, want %d", width, len(lines), Chrome(st)+len(st.Names))
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > width {
				t.Errorf("width %d: line of %d runes: %q", width, n, l)
			}
		}
		if width < 60 {
			continue // lines are cut inside the numeric columns
		}
		table := lines[Chrome(st)-1:]
		end := strings.Index(table[0], "SHED") + len("SHED")
		for _, l := range table[1:] {
			if r := []rune(l); len(r) < end || r[end-1] == ' ' || (len(r) > end && r[end] != ' ') {
				t.Errorf("width %d: SHED column does not end at %d in %q", width, end, l)
			}
		}
	}
}

func TestRenderError(t *testing.T) {
	err := errors.New("127.0.0.1:8127 unreachable: dial tcp 127.0.0.1:8127: connect: connection refused\nsecond line")
	got := strings.Join(RenderError(err, "retrying every 1s", View{Addr: "127.0.0.1:8127", Sort: "samples", N: 20, Keys: true}), "\n")
	want := `veneur-lite top  127.0.0.1:8127

error: 127.0.0.1:8127 unreachable: dial tcp 127.0.0.1:8127: connect: connection refused
retrying every 1s

names by samples (-n 20)   [s] sort  [+/-] n  [q] quit`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	got = strings.Join(RenderError(err, "", View{Addr: "127.0.0.1:8127", Sort: "series", Width: 40}), "\n")
	want = `veneur-lite top  127.0.0.1:8127

error: 127.0.0.1:8127 unreachable: dial
tcp 127.0.0.1:8127: connect: connection
refused

names by series`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		s     string
		width int
		want  []string
	}{
		{"a bc def", 0, []string{"a bc def"}},
		{"a bc def", 8, []string{"a bc def"}},
		{"a bc def", 7, []string{"a bc", "def"}},
		{"a bc def", 4, []string{"a bc", "def"}},
		{"a bc def", 3, []string{"a", "bc", "def"}},
		{"a bcdefgh i", 3, []string{"a", "bcdefgh", "i"}}, // cut by the caller
		{"aa bb cc dd ee", 5, []string{"aa bb", "cc dd", "ee"}},
		{"aa bb cc dd ee ff gg hh ii jj", 5, []string{"aa bb", "cc dd", "ee ff", "gg h…"}},
	} {
		if got := wrap(tc.s, tc.width, 4); !slices.Equal(got, tc.want) {
			t.Errorf("wrap(%q, %d) = %q, want %q", tc.s, tc.width, got, tc.want)
		}
	}
}

func TestSortOrders(t *testing.T) {
	if got := []string{nextSort("series"), nextSort("samples"), nextSort("shed"), nextSort("bogus")}; !slices.Equal(got, []string{"samples", "shed", "series", "series"}) {
		t.Errorf("next sorts %v", got)
	}
	names := []aggregate.NameStats{
		{Name: "b", Series: 10, Samples: 50},
		{Name: "a", Series: 1, Samples: 600},
		{Name: "c", Series: 100, Samples: 200, ShedSamples: 30},
	}
	for order, want := range map[string][]string{
		"series":  {"c", "b", "a"},
		"samples": {"a", "c", "b"},
		"shed":    {"c", "a", "b"}, // ties by name, as the endpoint breaks them
	} {
		sortNames(names, order)
		var got []string
		for _, ns := range names {
			got = append(got, ns.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("by %s: %v, want %v", order, got, want)
		}
	}
}
