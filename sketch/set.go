package sketch

import "github.com/axiomhq/hyperloglog"

// SetPrecision is the HyperLogLog precision of every set: 2^17 registers,
// a standard error of 1.04/√2^17 ≈ 0.29%, so that a set of 10^5–10^6
// members, local or merged from many hosts, is within 1% with a margin of
// over 3 standard errors (about 1 set in 1,800 beyond it). Precision 16
// (0.41%) misses 1% for about 1 set in 70, precision 14 (0.81%) for 1 in
// 5. Sketches only merge at equal precision, so the wire pins it.
//
// Memory per set, as TestSetMemory measures it (the library keeps a set
// sparse until its sparse list outgrows the registers, at roughly 40,000
// members):
//
//	empty            ~140 B
//	10 members       ~210 B
//	1,000 members    ~8 KiB (~12 KiB once Estimate has compacted it)
//	10,000 members   ~32 KiB
//	dense            128 KiB (131,080 bytes on the wire)
const SetPrecision = 17

// NewSet returns an empty set sketch at SetPrecision. It starts sparse, so
// that a set with few members stays small.
func NewSet() *hyperloglog.Sketch {
	sk, err := hyperloglog.NewSketch(SetPrecision, true)
	if err != nil {
		panic("sketch: " + err.Error()) // SetPrecision is a valid constant
	}
	return sk
}
