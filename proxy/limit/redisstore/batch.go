package redisstore

import (
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisix/aisix/proxy/limit"
)

var _ limit.BatchStore = (*Store)(nil)

// pipeline runs calls in one round trip, bounded by the Store's timeout.
// A call the server did not run because it does not know the script yet
// (NOSCRIPT: a new or restarted server) is sent again with its source, in
// a second round trip; no other is sent twice. It returns every call's
// command and the first error.
func (s *Store) pipeline(calls []call) ([]*redis.Cmd, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	cmds := make([]*redis.Cmd, len(calls))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	if err == nil {
		return cmds, nil
	}
	var again []int
	for i, cmd := range cmds {
		if e := cmd.Err(); e != nil && strings.HasPrefix(e.Error(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return cmds, err
	}
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range again {
			c := calls[i]
			cmds[i] = c.script.Eval(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	if err == nil {
		for _, cmd := range cmds {
			if err = cmd.Err(); err != nil {
				break
			}
		}
	}
	return cmds, err
}

// AdmitBatch implements limit.BatchStore: the Admit scripts of every
// subject in one pipeline (one round trip), or the in-process store while
// degraded. When the pipeline fails every subject is admitted in memory;
// what the server ran of it leaves on its own, as a timed-out Admit's does.
func (s *Store) AdmitBatch(subjects []limit.Subject, now time.Time, tokens int64, adm []limit.Admission, use []limit.Usage, rej []*limit.Rejection) {
	tokens = max(tokens, 0)
	if !s.degraded.Load() {
		err := s.admitBatch(subjects, now, tokens, adm, use, rej)
		if err == nil {
			return
		}
		s.fail(err)
	}
	for i := range subjects {
		adm[i], use[i], rej[i] = s.mem.Admit(subjects[i].Key, subjects[i].Limits, now, tokens)
	}
}

func (s *Store) admitBatch(subjects []limit.Subject, now time.Time, tokens int64, adm []limit.Admission, use []limit.Usage, rej []*limit.Rejection) error {
	calls := make([]call, len(subjects))
	members := make([]string, len(subjects))
	for i := range subjects {
		calls[i], members[i] = s.admitCall(subjects[i].Key, &subjects[i].Limits, now, tokens)
	}
	cmds, err := s.pipeline(calls)
	if err != nil {
		return err
	}
	for i := range subjects {
		sub := &subjects[i]
		adm[i], use[i], rej[i], err = parseAdmit(cmds[i], sub.Key, &sub.Limits, now, tokens, members[i])
		if err != nil {
			return err
		}
	}
	return nil
}

// RevertBatch implements limit.BatchStore: the Redis admissions in one
// round trip, the in-process ones in memory (see Revert).
func (s *Store) RevertBatch(adm []limit.Admission) {
	s.batch(adm, s.mem.Revert, func(a *limit.Admission, h *handle) call { return s.revertCall(a, h) })
}

// SettleBatch implements limit.BatchStore: the Redis admissions in one
// round trip, the in-process ones in memory (see Settle).
func (s *Store) SettleBatch(adm []limit.Admission, now time.Time, tokens int64, costUSD float64) {
	s.batch(adm,
		func(a *limit.Admission) { s.mem.Settle(a, now, tokens, costUSD) },
		func(a *limit.Admission, h *handle) call { return s.settleCall(a, h, now, tokens, costUSD) })
}

// batch ends every admission: in memory with inMem, or, unless degraded,
// in Redis with the calls of inRedis in one pipeline.
func (s *Store) batch(adm []limit.Admission, inMem func(*limit.Admission), inRedis func(*limit.Admission, *handle) call) {
	var buf [3]call
	calls := buf[:0]
	degraded := s.degraded.Load()
	for i := range adm {
		h, ok := adm[i].Handle.(*handle)
		switch {
		case !ok:
			inMem(&adm[i])
		case !degraded:
			calls = append(calls, inRedis(&adm[i], h))
		}
	}
	switch len(calls) {
	case 0:
		return
	case 1:
		if err := s.run(calls[0]).Err(); err != nil {
			s.fail(err)
		}
		return
	}
	if _, err := s.pipeline(calls); err != nil {
		s.fail(err)
	}
}
