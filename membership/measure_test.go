package membership

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestMeasure prints the timings quoted in the package documentation. It
// is opt-in (it takes about a minute, the lan profile most of it):
//
//	MEMBERSHIP_MEASURE=5 go test -run TestMeasure -v ./membership
//
// The value is the number of trials per profile (local; lan gets at most 3).
// Each trial starts 5 members (a coordinator, then 4 clients that join it),
// measures convergence from the first Start until every member lists all 5,
// closes one client (Leave seen by all others), and crashes another
// (Shutdown without Leave: Fail seen by all others, grace period included).
func TestMeasure(t *testing.T) {
	trials, _ := strconv.Atoi(os.Getenv("MEMBERSHIP_MEASURE"))
	if trials <= 0 {
		t.Skip("set MEMBERSHIP_MEASURE=<trials> to measure")
	}
	for _, profile := range []string{ProfileLocal, ProfileLAN} {
		n := trials
		if profile == ProfileLAN {
			n = min(trials, 3)
		}
		var conv, leave, fail []time.Duration
		for range n {
			gs, c := cluster(t, 5, func(i int, c *Config) { c.Profile = profile })
			conv = append(conv, c)
			t0 := time.Now()
			closeNow(t, gs[4])
			for _, g := range gs[:4] {
				waitEvent(t, g, 10*time.Second, Leave, "n4")
			}
			leave = append(leave, time.Since(t0))
			t0 = time.Now()
			crash(t, gs[3])
			for _, g := range gs[:3] {
				waitEvent(t, g, 30*time.Second, Fail, "n3")
			}
			fail = append(fail, time.Since(t0))
			for _, g := range gs[:3] {
				closeNow(t, g)
			}
		}
		t.Logf("%-5s  5-node convergence %s | leave seen by all %s | crash seen by all %s",
			profile, spread(conv), spread(leave), spread(fail))
	}
}

// spread formats min / median / max.
func spread(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) string {
		if d < time.Second {
			return d.Round(time.Millisecond).String()
		}
		return d.Round(10 * time.Millisecond).String()
	}
	return fmt.Sprintf("%s / %s / %s (n=%d)", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]), len(s))
}
