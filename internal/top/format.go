package top

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/veneur-lite/veneur-lite/aggregate"
)

// View is what a screen shows besides the figures.
type View struct {
	// Addr names the instance in the header.
	Addr string
	// Sort is the order the names are in: aggregate.BySeries, BySamples
	// or ByShed.
	Sort string
	// Width is the screen's width in columns: every line is cut to it
	// and long names are shortened to fit. 0 means no limit: nothing is
	// cut (plain output for scripts).
	Width int
	// N is the names asked for (-n), shown in the header when > 0.
	N int
	// Rows bounds the table's rows; 0 means all the snapshot has.
	Rows int
	// Keys adds the key help to the header (the live view).
	Keys bool
}

// Table columns, right-aligned, in this order after NAME. The widths fit
// the widest figure each can print: a count is at most 5 characters
// ("999k", "12.3M"), a rate 5 ("99.9M"), and each title.
var columns = [...]struct {
	title string
	width int
}{
	{"SERIES", 6},
	{"SAMPLES", 7},
	{"SAMPLES/S", 9},
	{"SHED", 6},
}

const (
	gap = "  " // between columns
	// minNameWidth and minTagsWidth are what NAME and TAG KEYS:VALUES keep
	// on a narrow screen before lines are simply cut.
	minNameWidth = 16
	minTagsWidth = 16
	tagsTitle    = "TAG KEYS:VALUES"
)

// fixedWidth is the width of the numeric columns with their gaps, from
// the end of NAME to the start of TAG KEYS:VALUES.
var fixedWidth = func() int {
	w := 0
	for _, c := range columns {
		w += len(gap) + c.width
	}
	return w + len(gap)
}()

// Render lays a snapshot out as lines of text, without line ends or
// escapes: a header (the instance and the interval; series against their
// limits and samples; shed samples), a caption that says which names
// the table shows, and the table of the names in the order they come in.
func Render(st aggregate.SeriesStats, v View) []string {
	shown := st.Names[:rows(st, v)]
	lines := []string{
		fmt.Sprintf("veneur-lite top  %s  interval %s +%s", v.Addr,
			st.IntervalStart.Format("15:04:05"), elapsed(st.ElapsedSeconds)),
		fmt.Sprintf("series: %s%s  samples: %s (%s/s)",
			Count(uint64(max(st.LiveSeries, 0))), limits(st), Count(st.Samples), Rate(st.SamplesPerSecond)),
		shedLine(st.ShedSamples),
		"",
		caption(v, fmt.Sprintf("top %d of %d names", len(shown), st.TotalNames)),
	}
	lines = append(lines, table(shown, v.Width)...)
	if st.TagsSampled {
		lines = append(lines, "", "tag values of the largest names are counted over a sample of their series: at least as many")
	}
	for i, l := range lines {
		lines[i] = Fit(strings.TrimRight(l, " "), v.Width)
	}
	return lines
}

// Chrome is how many lines Render adds to the table's rows.
func Chrome(st aggregate.SeriesStats) int {
	if st.TagsSampled {
		return 8
	}
	return 6
}

// RenderError is the screen while the instance cannot be read: the
// header and the one-line message that says why, wrapped to the width
// so that its advice is not cut off, then note if there is one.
func RenderError(err error, note string, v View) []string {
	lines := []string{"veneur-lite top  " + v.Addr, ""}
	lines = append(lines, wrap("error: "+oneLine(err.Error()), v.Width, maxErrorLines)...)
	if note != "" {
		lines = append(lines, note)
	}
	lines = append(lines, "", caption(v, "names"))
	for i, l := range lines {
		lines[i] = Fit(l, v.Width)
	}
	return lines
}

// maxErrorLines bounds a wrapped error message.
const maxErrorLines = 4

// wrap breaks s into lines of at most width runes at spaces (a longer
// word stays whole, for the caller to cut), at most maxLines of them,
// the last one ending in "…" if text is left; width <= 0 leaves s on one
// line.
func wrap(s string, width, maxLines int) []string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return []string{s}
	}
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	lines = append(lines, line)
	if len(lines) > maxLines {
		lines = lines[:maxLines]
		lines[maxLines-1] = Fit(lines[maxLines-1]+" …", width)
	}
	return lines
}

// caption says what the table holds, in which order, and the keys.
func caption(v View, what string) string {
	s := what + " by " + v.Sort
	if v.N > 0 {
		s += fmt.Sprintf(" (-n %d)", v.N)
	}
	if v.Keys {
		s += "   [s] sort  [+/-] n  [q] quit"
	}
	return s
}

// rows is how many of the snapshot's names the table shows.
func rows(st aggregate.SeriesStats, v View) int {
	if v.Rows > 0 {
		return min(v.Rows, len(st.Names))
	}
	return len(st.Names)
}

// limits shows max_series and max_series_per_name, 0 being no limit.
func limits(st aggregate.SeriesStats) string {
	switch {
	case st.MaxSeries <= 0 && st.MaxSeriesPerName <= 0:
		return " (no limit)"
	case st.MaxSeriesPerName <= 0:
		return fmt.Sprintf(" of %s", Count(uint64(st.MaxSeries)))
	case st.MaxSeries <= 0:
		return fmt.Sprintf(" (%s per name)", Count(uint64(st.MaxSeriesPerName)))
	}
	return fmt.Sprintf(" of %s (%s per name)", Count(uint64(st.MaxSeries)), Count(uint64(st.MaxSeriesPerName)))
}

// shedLine totals the samples shed and splits them by reason.
func shedLine(byReason map[string]uint64) string {
	var total uint64
	var parts []string
	for _, reason := range slices.Sorted(maps.Keys(byReason)) {
		total += byReason[reason]
		if byReason[reason] > 0 {
			parts = append(parts, reason+" "+Count(byReason[reason]))
		}
	}
	if len(parts) == 0 {
		return "shed: 0"
	}
	return fmt.Sprintf("shed: %s (%s)", Count(total), strings.Join(parts, ", "))
}

// table lays out the names under a title line. With a width, NAME takes
// what the numeric columns and a useful TAG KEYS:VALUES leave.
func table(names []aggregate.NameStats, width int) []string {
	nameW := len("NAME")
	for _, ns := range names {
		nameW = max(nameW, utf8.RuneCountInString(ns.Name))
	}
	tagsW := 0 // no limit
	if width > 0 {
		// TAG KEYS:VALUES keeps what its rows need, up to two fifths of
		// what the numbers leave: the keys say why a name has its series.
		need := len(tagsTitle)
		for _, ns := range names {
			need = max(need, utf8.RuneCountInString(tagKeys(ns.TopTagKeys, 0)))
		}
		flexible := width - fixedWidth
		nameW = min(nameW, max(minNameWidth, flexible-min(need, max(minTagsWidth, flexible*2/5))))
		tagsW = max(flexible-nameW, 1)
	}
	row := func(name string, cells [len(columns)]string, tags string) string {
		var b strings.Builder
		b.WriteString(name)
		b.WriteString(strings.Repeat(" ", nameW-utf8.RuneCountInString(name)))
		for i, c := range columns {
			b.WriteString(gap)
			b.WriteString(strings.Repeat(" ", max(c.width-len(cells[i]), 0)))
			b.WriteString(cells[i])
		}
		b.WriteString(gap)
		b.WriteString(tags)
		return b.String()
	}
	var titles [len(columns)]string
	for i, c := range columns {
		titles[i] = c.title
	}
	lines := []string{row("NAME", titles, tagsTitle)}
	for _, ns := range names {
		lines = append(lines, row(Shorten(ns.Name, nameW), [len(columns)]string{
			Count(uint64(max(ns.Series, 0))),
			Count(ns.Samples),
			Rate(ns.SamplesPerSecond),
			Count(ns.ShedSamples),
		}, tagKeys(ns.TopTagKeys, tagsW)))
	}
	return lines
}

// tagKeys lists key:distinct-values pairs, all of them if they fit in
// width (0: no limit), else as many whole ones as leave room for " …".
func tagKeys(keys []aggregate.TagKeyStats, width int) string {
	items := make([]string, len(keys))
	for i, k := range keys {
		items[i] = k.Key + ":" + Count(uint64(max(k.Values, 0)))
	}
	all := strings.Join(items, " ")
	if width <= 0 || utf8.RuneCountInString(all) <= width {
		return all
	}
	for n := len(items) - 1; n > 0; n-- {
		if s := strings.Join(items[:n], " ") + " …"; utf8.RuneCountInString(s) <= width {
			return s
		}
	}
	return Fit(all, width)
}

// Shorten fits a name into width runes by cutting its middle, where
// dotted metric names are least telling: "api.requests.…errors.count".
// width <= 0 leaves it as it is.
func Shorten(name string, width int) string {
	n := utf8.RuneCountInString(name)
	if width <= 0 || n <= width {
		return name
	}
	if width == 1 {
		return "…"
	}
	r := []rune(name)
	head := width / 2 // of the width-1 runes kept, the head takes the odd one
	tail := width - 1 - head
	return string(r[:head]) + "…" + string(r[n-tail:])
}

// Fit cuts a line to width runes, marking the cut with "…"; width <= 0
// leaves it as it is.
func Fit(line string, width int) string {
	if width <= 0 || utf8.RuneCountInString(line) <= width {
		return line
	}
	r := []rune(line)
	return string(r[:width-1]) + "…"
}

// Count prints a count exactly below 1000, then with three significant
// figures at most and an SI suffix: 999, 1.2k, 12.3k, 123k, 3.4M.
func Count(n uint64) string {
	if n < 1000 {
		return strconv.FormatUint(n, 10)
	}
	return scaled(float64(n))
}

// Rate prints a per-second rate: one decimal below 100, whole numbers
// below 1000, then as Count does.
func Rate(r float64) string {
	switch {
	case !(r > 0): // 0, negative, NaN
		return "0"
	case r < 99.95: // rounds to 99.9 at most
		return strconv.FormatFloat(r, 'f', 1, 64)
	case r < 999.5:
		return strconv.FormatFloat(r, 'f', 0, 64)
	}
	return scaled(r)
}

// scaled prints v >= 1000 with an SI suffix, one decimal while the
// mantissa is below 100; a mantissa that rounds to 1000 moves to the
// next suffix (999,950 is 1.0M, not 1000k).
func scaled(v float64) string {
	const suffixes = "kMGTPE"
	for i := range len(suffixes) {
		v /= 1000
		if s := strconv.FormatFloat(v, 'f', 1, 64); len(s) <= len("99.9") {
			return s + suffixes[i:i+1]
		}
		if s := strconv.FormatFloat(v, 'f', 0, 64); len(s) <= len("999") {
			return s + suffixes[i:i+1]
		}
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "E"
}

// elapsed prints the time since the interval started: 4.2s, 12m03s.
func elapsed(seconds float64) string {
	if !(seconds > 0) {
		return "0.0s"
	}
	if seconds < 60 {
		return strconv.FormatFloat(seconds, 'f', 1, 64) + "s"
	}
	s := int64(seconds)
	if s < 3600 {
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm%02ds", s/3600, s/60%60, s%60)
}

// oneLine keeps the first line of a message.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Sorts are the orders, in the order the s key cycles through them.
var Sorts = []string{aggregate.BySeries, aggregate.BySamples, aggregate.ByShed}

// nextSort is the order after sort in Sorts.
func nextSort(sort string) string {
	i := slices.Index(Sorts, sort)
	return Sorts[(i+1)%len(Sorts)]
}

// sortNames orders names as the endpoint does for sort: the figure
// descending, then the name. The live view uses it to show a new order
// at once, before the endpoint's answer for it comes back.
func sortNames(names []aggregate.NameStats, sort string) {
	key := func(ns *aggregate.NameStats) uint64 { return uint64(max(ns.Series, 0)) }
	switch sort {
	case aggregate.BySamples:
		key = func(ns *aggregate.NameStats) uint64 { return ns.Samples }
	case aggregate.ByShed:
		key = func(ns *aggregate.NameStats) uint64 { return ns.ShedSamples }
	}
	slices.SortStableFunc(names, func(x, y aggregate.NameStats) int {
		return cmp.Or(cmp.Compare(key(&y), key(&x)), cmp.Compare(x.Name, y.Name))
	})
}
