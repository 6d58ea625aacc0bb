package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// TargetAisixRedis is aisix with --redis: the same caller key limits as
// TargetAisix, counted in Redis (Options.Redis).
const TargetAisixRedis = "aisix redis"

// startRedis starts the session's redis-server (no persistence, loopback,
// a free port) when Options.Redis is set and redis-server is on PATH; it
// logs and leaves r.redisURL empty when it is not installed.
func (r *rig) startRedis(ctx context.Context) error {
	if !r.opts.Redis {
		return nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		r.logf("redis-server not on PATH: no Redis rows (apt-get install -y redis-server)")
		return nil
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(r.tmp, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c, err := r.cs.start(r.tmp, "redis", syscall.SIGKILL, os.Environ(), bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, c, 15*time.Second, "redis-server", tcpOpen(addr)); err != nil {
		return err
	}
	r.redisURL, r.redisPID = "redis://"+addr+"/0", c.pid()
	if out, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		r.redisVersion = string(trimNL(out))
	}
	return nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// redisTargets is TargetAisixRedis when the session has a Redis, else none.
func (r *rig) redisTargets() []string {
	if r.redisURL == "" {
		return nil
	}
	return []string{TargetAisixRedis}
}

// redisArgs are aisix serve's extra arguments for target.
func (r *rig) redisArgs(target string) []string {
	if target != TargetAisixRedis {
		return nil
	}
	return []string{"--redis", r.redisURL}
}

func redisCPU(s Sample) float64 { return s.RedisCPUPerReq }

// redisTable compares aisix with and without Redis, per scenario: the
// latency and CPU Redis adds to each request.
func (r *Report) redisTable(b *strings.Builder) {
	var found bool
	for _, sc := range r.Scenarios {
		if sc.Samples[TargetAisixRedis] != nil {
			found = true
		}
	}
	if !found {
		return
	}
	fmt.Fprintf(b, "### Redis: shared limits (`-redis`)\n\n")
	fmt.Fprintf(b, "`%s` is aisix with `--redis` on %s (loopback, no persistence): the bench caller key's rpm, tpm and concurrency "+
		"limits (which never refuse; an rpm above 65,536 is counted in 1 s slots) are admitted and settled in Redis, two round trips per request. "+
		"`%s` has the same limits in process. Differences are paired within a run.\n\n", TargetAisixRedis, r.RedisVersion, TargetAisix)
	header(b, "scenario", "p50 without → with", "p99 without → with", "added p50", "added p99", "aisix CPU/req without → with", "redis-server CPU/req")
	for _, sc := range r.Scenarios {
		with, without := sc.Samples[TargetAisixRedis], sc.Samples[TargetAisix]
		if with == nil || without == nil {
			continue
		}
		lat50, lat99 := p50, p99
		if sc.Stream {
			lat50, lat99 = t50, t99
		}
		row(b, sc.ID, msCell(each(without, lat50))+" → "+msCell(each(with, lat50)), msCell(each(without, lat99))+" → "+msCell(each(with, lat99)),
			addCell(paired(with, without, minus(lat50))), addCell(paired(with, without, minus(lat99))),
			usCell(each(without, cpu))+" → "+usCell(each(with, cpu)), usCell(each(with, redisCPU)))
	}
	fmt.Fprintf(b, "\nStreaming rows compare TTFB. Closed-loop latency is at the maximum rate, where Redis's round trips also lower the rps (see that table).\n\n")
}
