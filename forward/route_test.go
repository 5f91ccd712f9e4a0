package forward

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sketch"
)

func routeKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = metric.SeriesKey(metric.Histogram, fmt.Sprintf("api.request.latency.%d", i), []string{"env:prod"})
	}
	return keys
}

func owner(v *view, key string) string { return v.members[v.route(key)] }

func TestRoutingIsStableAndBalanced(t *testing.T) {
	members := []string{"http://10.0.0.1:8127", "http://10.0.0.2:8127", "http://10.0.0.3:8127"}
	v := newView(members)
	// Another instance lists the same members in another order (each host
	// resolves DNS on its own): its routing must agree key for key.
	other := newView([]string{members[2], members[0], members[1]})
	keys := routeKeys(3000)
	perMember := map[string]int{}
	for _, k := range keys {
		m := owner(v, k)
		if again := owner(v, k); again != m {
			t.Fatalf("key %q routed to %s then %s", k, m, again)
		}
		if o := owner(other, k); o != m {
			t.Fatalf("key %q: %s with one member order, %s with another", k, m, o)
		}
		perMember[m]++
	}
	t.Logf("3000 keys over 3 members: %v", perMember)
	for _, m := range members {
		// Expected 1000 each, standard deviation about 26.
		if n := perMember[m]; n < 850 || n > 1150 {
			t.Errorf("member %s got %d of 3000 keys, want about 1000", m, n)
		}
	}
}

func TestRoutingMovesOnlyWhatMembershipChangeRequires(t *testing.T) {
	members := []string{"http://10.0.0.1:8127", "http://10.0.0.2:8127", "http://10.0.0.3:8127"}
	keys := routeKeys(3000)
	three := newView(members)
	before := make(map[string]string, len(keys))
	for _, k := range keys {
		before[k] = owner(three, k)
	}

	t.Run("remove one", func(t *testing.T) {
		removed := members[1]
		two := newView([]string{members[0], members[2]})
		moved := 0
		for _, k := range keys {
			now := owner(two, k)
			if before[k] != removed && now != before[k] {
				t.Fatalf("key %q moved from %s to %s although its member stayed", k, before[k], now)
			}
			if now != before[k] {
				moved++
			}
		}
		onRemoved := 0
		for _, m := range before {
			if m == removed {
				onRemoved++
			}
		}
		t.Logf("removing 1 of 3 members moved %d keys; it held %d", moved, onRemoved)
		if moved != onRemoved {
			t.Errorf("moved %d keys, want exactly the %d of the removed member", moved, onRemoved)
		}
	})

	t.Run("add a fourth", func(t *testing.T) {
		added := "http://10.0.0.4:8127"
		four := newView(append(slices.Clone(members), added))
		moved := 0
		for _, k := range keys {
			now := owner(four, k)
			if now != before[k] {
				if now != added {
					t.Fatalf("key %q moved from %s to %s, not to the new member", k, before[k], now)
				}
				moved++
			}
		}
		t.Logf("adding a 4th member moved %d of 3000 keys", moved)
		// Expected 750 (1/4), standard deviation about 24.
		if moved < 600 || moved > 900 {
			t.Errorf("adding a 4th member moved %d of 3000 keys, want about 750", moved)
		}
	})
}

func TestCoalesceMergesSameKey(t *testing.T) {
	f := &Forwarder{}
	t0 := time.Unix(1_700_000_000, 0)
	t1 := t0.Add(10 * time.Second)
	held := []heldSeries{
		{series: counterSeries("hits", 2), since: t0},
		{series: gaugeSeries("temp", 1), since: t0},
		{series: timerSeries("lat", 1, 2, 3), since: t0},
	}
	fresh := []metric.Series{
		counterSeries("hits", 3),
		counterSeries("hits", 5), // the same series from another scope
		gaugeSeries("temp", 7),
		timerSeries("lat", 4, 5),
		timerSeries("lat", 6),
		setSeries("users", "a", "b"),
		setSeries("users", "b", "c"),
		counterSeries("other", 1),
	}
	var out outcome
	p := f.coalesce(held, fresh, t1, &out)
	got := map[string]metric.Series{}
	since := map[string]time.Time{}
	for i, s := range p.series {
		if _, dup := got[s.Key]; dup {
			t.Fatalf("key %q appears twice after coalescing", s.Key)
		}
		got[s.Key], since[s.Key] = s, p.since[i]
	}
	if len(got) != 5 {
		t.Fatalf("got %d series, want 5: %v", len(got), p.series)
	}
	if v := got["counter|hits|"].Value; v != 10 {
		t.Errorf("counter sum %v, want 10", v)
	}
	if v := got["gauge|temp|"].Value; v != 7 {
		t.Errorf("gauge %v, want the fresh value 7", v)
	}
	if c := got["histogram|lat|"].Digest.Count(); c != 6 {
		t.Errorf("digest count %v, want 6", c)
	}
	if e := got["set|users|"].Set.Estimate(); e != 3 {
		t.Errorf("set estimate %d, want 3", e)
	}
	if !since["counter|hits|"].Equal(t0) || !since["counter|other|"].Equal(t1) {
		t.Errorf("since: held series should keep %v, fresh ones get %v; got %v and %v",
			t0, t1, since["counter|hits|"], since["counter|other|"])
	}
	if out.encodeDropped != 0 {
		t.Errorf("%d series lost merging", out.encodeDropped)
	}
}

func counterSeries(name string, v float64) metric.Series {
	return metric.Series{Key: metric.SeriesKey(metric.Counter, name, nil), Name: name, Kind: metric.Counter, Value: v}
}

func gaugeSeries(name string, v float64) metric.Series {
	return metric.Series{Key: metric.SeriesKey(metric.Gauge, name, nil), Name: name, Kind: metric.Gauge, Value: v}
}

func timerSeries(name string, values ...float64) metric.Series {
	td := new(sketch.Digest)
	for _, v := range values {
		td.Add(v, 1)
	}
	return metric.Series{Key: metric.SeriesKey(metric.Histogram, name, nil), Name: name, Kind: metric.Histogram, Digest: td}
}

func setSeries(name string, members ...string) metric.Series {
	sk := sketch.NewSet()
	for _, m := range members {
		sk.Insert([]byte(m))
	}
	return metric.Series{Key: metric.SeriesKey(metric.Set, name, nil), Name: name, Kind: metric.Set, Set: sk}
}
