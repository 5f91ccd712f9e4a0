//go:build race

package sketch

// raceEnabled: the race detector slows these CPU-bound tests about
// fifteenfold and drops a quarter of sync.Pool puts, so under it the heavy
// accuracy cases run once and allocation counts are not checked.
const raceEnabled = true
