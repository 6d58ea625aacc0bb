// Package sharedcooldown shares a health.Registry's cooldowns with the
// other aisix replicas that use the same Redis: a target one replica puts
// in cooldown is skipped by every replica within a moment, and a good
// answer that clears a cooldown (a probe's) clears it everywhere. Each
// replica still runs its own probes when a cooldown runs out.
//
// # Usage
//
//	sh := sharedcooldown.New(reg, client, sharedcooldown.Options{OnStateChange: …})
//	defer sh.Close()
//
// New registers the Sharer with the registry (health.Registry.SetSharer)
// and starts two goroutines: a publisher and a subscriber.
//
// # Redis layout
//
// A cooldown armed here is written by one Lua script that, unless Redis
// already holds a cooldown of that target lasting at least as long, sets
//
//	aisix:cd:{cd}:<target id>   hash: armed_ms, until_ms, msg; PX = the cooldown's remaining time
//	aisix:cd:{cd}:index         sorted set: target id → until_ms (a replica that starts reads it)
//
// and PUBLISHes msg (JSON: op, id, reason, armed_at, until, from) on the
// channel aisix:cd. A recovery deletes the target's key, unless it holds a
// cooldown armed after the one the recovery answered, and publishes too.
// The {cd} hash tag keeps the keys on one Redis Cluster slot. Target ids
// are store ids, the same on every replica of one store.
//
// # Never in the way of a request
//
// The registry tells the Sharer from the request's goroutine; the Sharer
// only puts the news in a buffered channel (Options.Queue) and returns. A
// full channel drops the news and counts it (Dropped). The publisher
// goroutine writes to Redis with every call bounded by Options.Timeout.
//
// # When Redis is down
//
// Cooldowns stay local: each replica finds a broken target for itself. The
// latest news of each target that could not be published is kept and sent
// when Redis is back, if still current; the subscriber reconnects every
// Options.RetryEvery, subscribes again and reads the cooldowns Redis holds.
// A recovery published while a replica was away is not replayed: that
// replica's copy of the cooldown runs out and it probes for itself.
// OnStateChange(true) is called when sharing stops, (false) when it
// resumes.
package sharedcooldown

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisix/aisix/proxy/health"
)

// Defaults of Options.
const (
	DefaultPrefix     = "aisix:"
	DefaultTimeout    = 50 * time.Millisecond
	DefaultQueue      = 1024
	DefaultRetryEvery = time.Second
	DefaultIdle       = time.Second
)

// maxUnsent bounds the news kept while Redis is down (one per target).
const maxUnsent = 10000

// Options configure a Sharer. The zero value is the defaults.
type Options struct {
	// Prefix starts every key and the channel; empty means DefaultPrefix.
	Prefix string
	// Timeout bounds every Redis call of the publisher and of a re-read;
	// zero means DefaultTimeout.
	Timeout time.Duration
	// Queue is how much news may wait for the publisher; zero means
	// DefaultQueue.
	Queue int
	// RetryEvery is how long the subscriber waits between reconnections;
	// zero means DefaultRetryEvery.
	RetryEvery time.Duration
	// Idle is how long the subscription may be silent before a PING
	// checks it (and how long the PING's answer may take); zero means
	// DefaultIdle.
	Idle time.Duration
	// OnStateChange, if set, is called with true when sharing stops
	// (Redis failed) and with false when it resumes. It runs on the
	// Sharer's goroutines.
	OnStateChange func(down bool)
}

// Sharer shares one registry's cooldowns through Redis. Create it with New.
type Sharer struct {
	reg  *health.Registry
	c    redis.UniversalClient
	opts Options
	self string // this replica, so its own news is not applied twice

	keyPrefix, index, channel string

	queue   chan message
	flush   chan struct{}
	dropped atomic.Uint64
	down    atomic.Bool
	// subscribed is set once the subscriber has read Redis (tests wait
	// on it).
	subscribed atomic.Bool

	mu     sync.Mutex
	unsent map[string]message // by target id: the latest news not published
	ps     *redis.PubSub      // the subscription of the session, if any

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ health.Sharer = (*Sharer)(nil)

// message is the news of one target, published and stored as JSON.
type message struct {
	Op      string `json:"op"` // opCooldown or opRecovered
	ID      string `json:"id"`
	Reason  string `json:"reason,omitempty"`
	ArmedAt int64  `json:"armed_at"`        // Unix ns
	Until   int64  `json:"until,omitempty"` // Unix ns
	From    string `json:"from"`
}

const (
	opCooldown  = "cooldown"
	opRecovered = "recovered"
)

// New returns a Sharer of reg's cooldowns on client and starts it. The
// client should bound its calls (context deadlines honoured, no retries:
// see redisstore.ClientOptions). Close stops it.
func New(reg *health.Registry, client redis.UniversalClient, opts Options) *Sharer {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = DefaultRetryEvery
	}
	if opts.Idle <= 0 {
		opts.Idle = DefaultIdle
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	s := &Sharer{
		reg: reg, c: client, opts: opts, self: hex.EncodeToString(id[:]),
		keyPrefix: opts.Prefix + "cd:{cd}:", index: opts.Prefix + "cd:{cd}:index", channel: opts.Prefix + "cd",
		queue: make(chan message, opts.Queue), flush: make(chan struct{}, 1),
		unsent: map[string]message{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go s.publisher()
	go s.subscriber()
	reg.SetSharer(s)
	return s
}

// Close stops sharing and waits for the Sharer's goroutines. It does not
// close the client.
func (s *Sharer) Close() error {
	s.reg.SetSharer(nil)
	s.mu.Lock()
	s.cancel()
	if s.ps != nil {
		_ = s.ps.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Dropped is how much news was dropped because the queue was full.
func (s *Sharer) Dropped() uint64 { return s.dropped.Load() }

// Down reports whether sharing has stopped because Redis failed.
func (s *Sharer) Down() bool { return s.down.Load() }

// Armed implements health.Sharer: it queues the news without waiting.
func (s *Sharer) Armed(id, reason string, armedAt, until time.Time) {
	s.enqueue(message{Op: opCooldown, ID: id, Reason: reason, ArmedAt: armedAt.UnixNano(), Until: until.UnixNano(), From: s.self})
}

// Recovered implements health.Sharer: it queues the news without waiting.
func (s *Sharer) Recovered(id string, armedAt time.Time) {
	s.enqueue(message{Op: opRecovered, ID: id, ArmedAt: armedAt.UnixNano(), From: s.self})
}

func (s *Sharer) enqueue(m message) {
	select {
	case s.queue <- m:
	default:
		s.dropped.Add(1)
	}
}

// setDown records the state and reports a change.
func (s *Sharer) setDown(down bool) {
	if s.down.CompareAndSwap(!down, down) && s.opts.OnStateChange != nil {
		s.opts.OnStateChange(down)
	}
}

// publisher writes queued news to Redis, or keeps it while Redis is down.
func (s *Sharer) publisher() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case m := <-s.queue:
			if s.down.Load() {
				s.keep(m)
				continue
			}
			if err := s.publish(m); err != nil {
				s.keep(m)
				if s.ctx.Err() == nil {
					s.setDown(true)
				}
				continue
			}
			// Newer news of the target: what was kept for it is stale.
			s.mu.Lock()
			delete(s.unsent, m.ID)
			s.mu.Unlock()
		case <-s.flush:
			s.flushUnsent()
		}
	}
}

// keep remembers m as the latest unpublished news of its target.
func (s *Sharer) keep(m message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.unsent[m.ID]; !ok && len(s.unsent) >= maxUnsent {
		s.dropped.Add(1)
		return
	}
	s.unsent[m.ID] = m
}

// flushUnsent publishes the news kept while Redis was down that is still
// current: a cooldown not yet over, a recovery.
func (s *Sharer) flushUnsent() {
	s.mu.Lock()
	pending := s.unsent
	s.unsent = map[string]message{}
	s.mu.Unlock()
	now := s.reg.Now().UnixNano()
	for id, m := range pending {
		if m.Op == opCooldown && m.Until <= now {
			continue
		}
		if err := s.publish(m); err != nil {
			s.mu.Lock()
			for id2, m2 := range pending {
				if _, newer := s.unsent[id2]; !newer {
					s.unsent[id2] = m2
				}
			}
			s.mu.Unlock()
			s.setDown(true)
			return
		}
		delete(pending, id)
	}
}

// armScript stores a cooldown unless Redis holds one of the target lasting
// at least as long, indexes it, and publishes it.
// KEYS: target key, index. ARGV: armed_ms, until_ms, px, msg, channel, id.
var armScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'until_ms') or '0')
if cur >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'armed_ms', ARGV[1], 'until_ms', ARGV[2], 'msg', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1
`)

// recoverScript deletes a target's cooldown unless it was armed after the
// one the recovery answered, and publishes the recovery.
// KEYS: target key, index. ARGV: armed_ms, msg, channel, id.
var recoverScript = redis.NewScript(`
local a = redis.call('HGET', KEYS[1], 'armed_ms')
if a and tonumber(a) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
`)

// publish writes one piece of news to Redis, within the bound.
func (s *Sharer) publish(m message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	keys := []string{s.keyPrefix + m.ID, s.index}
	ms := func(ns int64) string { return strconv.FormatInt(ns/1e6, 10) }
	if m.Op == opCooldown {
		px := (m.Until - s.reg.Now().UnixNano()) / 1e6
		if px <= 0 {
			return nil // over already
		}
		return armScript.Run(ctx, s.c, keys, ms(m.ArmedAt), ms(m.Until), px, body, s.channel, m.ID).Err()
	}
	return recoverScript.Run(ctx, s.c, keys, ms(m.ArmedAt), body, s.channel, m.ID).Err()
}

// subscriber follows the channel, reconnecting every RetryEvery while
// Redis is down.
func (s *Sharer) subscriber() {
	defer s.wg.Done()
	for {
		err := s.session()
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			s.setDown(true)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.opts.RetryEvery):
		}
	}
}

// session subscribes, reads the cooldowns Redis holds, resumes sharing,
// and applies the news of other replicas until the subscription fails.
func (s *Sharer) session() error {
	ps := s.c.Subscribe(s.ctx) // subscribed below, to wait for the reply
	defer ps.Close()
	// A read in progress does not end when s.ctx does: Close closes the
	// subscription to end it.
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return s.ctx.Err()
	}
	s.ps = ps
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.ps = nil
		s.mu.Unlock()
	}()
	if err := ps.Subscribe(s.ctx, s.channel); err != nil {
		return err
	}
	// The confirmation: from then on no news is missed, so the cooldowns
	// read next and the messages that follow cover everything.
	if _, err := ps.ReceiveTimeout(s.ctx, s.opts.Idle); err != nil {
		return err
	}
	if err := s.resync(); err != nil {
		return err
	}
	pinged := false
	for s.ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(s.ctx, s.opts.Idle)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				// Silence: check the connection is alive.
				pctx, cancel := context.WithTimeout(s.ctx, s.opts.Idle)
				err = ps.Ping(pctx)
				cancel()
				if err != nil {
					return err
				}
				pinged = true
				continue
			}
			return err
		}
		pinged = false
		if m, ok := msg.(*redis.Message); ok {
			s.apply(m.Payload)
		}
		// The publisher failed meanwhile, but the subscription is alive:
		// read again and resume.
		if s.down.Load() {
			if err := s.resync(); err != nil {
				return err
			}
		}
	}
	return s.ctx.Err()
}

// resync reads the current cooldowns, applies them, marks sharing up and
// has the publisher send what it kept.
func (s *Sharer) resync() error {
	if err := s.readCurrent(); err != nil {
		return err
	}
	s.subscribed.Store(true)
	s.setDown(false)
	select {
	case s.flush <- struct{}{}:
	default:
	}
	return nil
}

// readCurrent applies every cooldown Redis holds that is not over.
func (s *Sharer) readCurrent() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	now := strconv.FormatInt(s.reg.Now().UnixMilli(), 10)
	pipe := s.c.Pipeline()
	pipe.ZRemRangeByScore(ctx, s.index, "-inf", now)
	ids := pipe.ZRangeByScore(ctx, s.index, &redis.ZRangeBy{Min: "(" + now, Max: "+inf"})
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	if len(ids.Val()) == 0 {
		return nil
	}
	pipe = s.c.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids.Val()))
	for i, id := range ids.Val() {
		cmds[i] = pipe.HGet(ctx, s.keyPrefix+id, "msg")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for _, c := range cmds {
		if c.Err() == nil {
			s.applyMessage(c.Val(), true)
		}
	}
	return nil
}

// apply applies news another replica published.
func (s *Sharer) apply(payload string) { s.applyMessage(payload, false) }

// applyMessage applies one piece of news to the registry; stored is true
// for a cooldown read from Redis (this replica's own included: it may have
// restarted).
func (s *Sharer) applyMessage(payload string, stored bool) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil || m.ID == "" {
		return
	}
	if m.From == s.self && !stored {
		return
	}
	t := s.reg.Target(m.ID)
	switch m.Op {
	case opCooldown:
		t.ApplyCooldown(m.Reason, time.Unix(0, m.ArmedAt), time.Unix(0, m.Until))
	case opRecovered:
		t.ApplyRecovery(time.Unix(0, m.ArmedAt))
	}
}
