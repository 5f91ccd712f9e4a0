package metric

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// PercentileName returns the metric-name suffix of percentile p (SPEC §1):
// N is p×100 when that is a whole number ("50percentile", "99percentile"),
// otherwise the decimal digits of p ("999percentile" for 0.999,
// "995percentile" for 0.995), so no two percentiles share a name.
//
// It works on the shortest decimal form of p rather than on p*100, because
// binary floating point makes 0.57*100 = 56.99999999999999.
func PercentileName(p float64) string {
	digits := strconv.FormatFloat(p, 'f', -1, 64)
	digits = strings.TrimPrefix(digits, "0.")
	if len(digits) <= 2 { // p×100 is whole: 0.5 → "50", 0.05 → "5"
		if len(digits) == 1 {
			digits += "0"
		}
		digits = strings.TrimPrefix(digits, "0")
	}
	return digits + "percentile"
}

// CheckPercentile checks that p can be estimated and named.
func CheckPercentile(p float64) error {
	if math.IsNaN(p) || p <= 0 || p >= 1 {
		return fmt.Errorf("percentile %v: must be strictly between 0 and 1", p)
	}
	return nil
}
