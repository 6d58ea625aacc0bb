package redisstore

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serverCPU is the CPU time (user and system) the shared redis-server has
// used so far, from /proc; 0 where there is no /proc.
func serverCPU(tb testing.TB) time.Duration {
	tb.Helper()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(requireServer(tb).PID()) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command's ")": state is the 3rd, utime the
	// 14th and stime the 15th of the whole line.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on every Linux aisix runs on.
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// scriptSamples is how many operations scriptCosts records.
const scriptSamples = 500

// scriptCosts runs op scriptSamples times with the server's slow log
// recording every command, and reports each script's mean execution time
// (the server's, without I/O) and the commands the scripts run per
// operation.
func scriptCosts(b *testing.B, op func(i int)) {
	b.Helper()
	ctx := context.Background()
	c := client(b, requireServer(b).Addr(), 5*time.Second)
	saved, err := c.ConfigGet(ctx, "slowlog-*").Result()
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		for k, v := range saved {
			c.ConfigSet(ctx, k, v)
		}
	}()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(c.ConfigSet(ctx, "slowlog-max-len", strconv.Itoa(8*scriptSamples)).Err())
	must(c.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err())
	must(c.SlowLogReset(ctx).Err())
	must(c.ConfigResetStat(ctx).Err())
	for i := range scriptSamples {
		op(i)
	}
	must(c.ConfigSet(ctx, "slowlog-log-slower-than", saved["slowlog-log-slower-than"]).Err())
	info, err := c.Info(ctx, "commandstats").Result()
	must(err)
	log, err := c.SlowLogGet(ctx, -1).Result()
	must(err)
	names := map[string]string{admitScript.Hash(): "admit", settleScript.Hash(): "settle", revertScript.Hash(): "revert"}
	sum, n := map[string]time.Duration{}, map[string]int{}
	for _, e := range log {
		if len(e.Args) < 2 || !strings.EqualFold(e.Args[0], "evalsha") {
			continue
		}
		if name, ok := names[e.Args[1]]; ok {
			sum[name] += e.Duration
			n[name]++
		}
	}
	for name, d := range sum {
		b.ReportMetric(float64(d.Microseconds())/float64(n[name]), name+"-µs/call")
	}
	b.ReportMetric(float64(innerCalls(info))/scriptSamples, "rediscalls/op")
}

// innerCalls sums the calls of INFO commandstats but the scripts' own and
// the instrumentation's: the commands the scripts ran.
func innerCalls(info string) int64 {
	var total int64
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		switch strings.TrimPrefix(name, "cmdstat_") {
		case "evalsha", "eval", "config|set", "config|resetstat", "config|get", "slowlog|reset", "info", "ping", "hello":
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, _ := strconv.ParseInt(calls, 10, 64)
		total += n
	}
	return total
}
