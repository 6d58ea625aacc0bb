package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// ScaleReport holds the scale measurements.
type ScaleReport struct {
	Keys, Models, Pool int
	// Rows is the number of resources written; Populate how long writing
	// them took (through storage/sqlite, before aisix starts).
	Rows     int
	Populate time.Duration
	// Startup is aisix's start to ready on the big store.
	Startup time.Duration
	// Direct and Aisix are interleaved plain open-loop runs: straight to
	// the mock, and through aisix with a random key of the pool and a
	// random model per request.
	Direct, Aisix []Sample
	// Writes are admin PUT response times on the big store; CatchUp the
	// longest wait after a PUT's answer for config_revision to reach
	// store_revision (0: it had on the first look).
	Writes  []time.Duration
	CatchUp time.Duration
	// Streams is a closed-loop streaming run holding Open streams open
	// through aisix to a slow mock; StreamRSS the largest VmRSS sampled
	// during it, StreamHWM aisix's VmHWM after it, IdleRSS its VmRSS before.
	Open      int
	Streams   LoadResult
	StreamRSS int64
	StreamHWM int64
	IdleRSS   int64
}

const (
	scaleModelFmt = "scale-model-%04d"
	scaleKeyFmt   = "sk-scale-%06d-bench"
	scaleSlow     = "scale-slow"
	scalePKs      = 10
)

// populate writes the scale store directly with storage/sqlite: ScaleKeys
// caller keys allowed every model, ScaleModels direct models on the mock
// over a few provider keys, and one model on the slow mock.
func (r *rig) populate(ctx context.Context, db string, slowPort int) (rows int, first modelRef, err error) {
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		return 0, first, err
	}
	defer st.Close()
	var pks []string
	for i := range scalePKs {
		pk, err := st.CreateProviderKey(ctx, storage.ProviderKey{
			DisplayName: fmt.Sprintf("scale-pk-%02d", i), Provider: "openai", Adapter: "openai",
			Secret: "sk-mock-scale-0000000001", APIBase: fmt.Sprintf("http://127.0.0.1:%d/v1", r.mockPort),
		})
		if err != nil {
			return rows, first, err
		}
		pks = append(pks, pk.ID)
		rows++
	}
	slowPK, err := st.CreateProviderKey(ctx, storage.ProviderKey{
		DisplayName: "scale-pk-slow", Provider: "openai", Adapter: "openai",
		Secret: "sk-mock-scale-0000000001", APIBase: fmt.Sprintf("http://127.0.0.1:%d/v1", slowPort),
	})
	if err != nil {
		return rows, first, err
	}
	rows++
	if _, err := st.CreateModel(ctx, storage.Model{DisplayName: scaleSlow, Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: slowPK.ID}); err != nil {
		return rows, first, err
	}
	rows++
	for i := range r.opts.ScaleModels {
		m, err := st.CreateModel(ctx, storage.Model{
			DisplayName: fmt.Sprintf(scaleModelFmt, i), Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pks[i%len(pks)],
		})
		if err != nil {
			return rows, first, err
		}
		if i == 0 {
			first = modelRef{id: m.ID, name: m.DisplayName, pk: m.ProviderKeyID}
		}
		rows++
	}
	for i := range r.opts.ScaleKeys {
		if err := ctx.Err(); err != nil {
			return rows, first, err
		}
		if _, err := st.CreateAPIKey(ctx, storage.APIKey{
			DisplayName: fmt.Sprintf("scale-key-%06d", i), KeyHash: keyHash(fmt.Sprintf(scaleKeyFmt, i)), AllowedModels: []string{"*"},
		}); err != nil {
			return rows, first, err
		}
		rows++
	}
	return rows, first, nil
}

func (r *rig) scale(ctx context.Context) (*ScaleReport, error) {
	o := r.opts
	sr := &ScaleReport{Keys: o.ScaleKeys, Models: o.ScaleModels, Pool: o.ScalePool, Open: o.ScaleStreams}
	slowPort, err := freePort()
	if err != nil {
		return nil, err
	}
	if _, err := r.startMock(ctx, "mock-slow", slowPort, o.ScaleChunkDelay); err != nil {
		return nil, err
	}
	db := filepath.Join(r.tmp, "scale.db")
	r.logf("scale: writing %d caller keys and %d models", o.ScaleKeys, o.ScaleModels)
	begin := time.Now()
	var m0 modelRef
	if sr.Rows, m0, err = r.populate(ctx, db, slowPort); err != nil {
		return nil, fmt.Errorf("populate: %w", err)
	}
	sr.Populate = time.Since(begin)

	a, err := r.startAisix(ctx, db)
	if err != nil {
		return nil, err
	}
	defer a.stop()
	sr.Startup = a.startup

	// Requests: a random key of the pool, a random model of all.
	rng := rand.New(rand.NewPCG(1, 2))
	var auths []string
	for _, i := range rng.Perm(o.ScaleKeys)[:o.ScalePool] {
		auths = append(auths, "Bearer "+fmt.Sprintf(scaleKeyFmt, i))
	}
	var bodies [][]byte
	for i := range o.ScaleModels {
		bodies = append(bodies, chatBody(fmt.Sprintf(scaleModelFmt, i), false))
	}
	plain := &ScenarioReport{Mode: OpenLoop}
	for run := range o.Runs {
		r.logf("scale run %d/%d: plain direct and through aisix", run+1, o.Runs)
		d, err := r.measureLoad(ctx, r.loadConfig(plain, r.mockURL, "gpt-4o-mini", o.Duration), nil)
		if err != nil {
			return nil, err
		}
		cfg := r.loadConfig(plain, a.url, "", o.Duration)
		cfg.Bodies, cfg.Auths = bodies, auths
		s, err := r.measureLoad(ctx, cfg, []int{a.c.pid()})
		if err != nil {
			return nil, err
		}
		sr.Direct = append(sr.Direct, d)
		sr.Aisix = append(sr.Aisix, s)
	}

	r.logf("scale: admin writes")
	if sr.Writes, sr.CatchUp, err = measureWrites(ctx, a.admin, m0.id, m0.name, m0.pk, 5); err != nil {
		return nil, err
	}
	if prof := r.profilerFor(a.pprof, "scale-writes"); prof != nil {
		// The heap of the big store, a CPU profile of admin writes one
		// after another (not measured), and the heap after them.
		perr := prof.save(ctx, "heap", "heap")
		wait := prof.cpu(ctx, 3*time.Second)
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
			if _, _, err := measureWrites(ctx, a.admin, m0.id, m0.name, m0.pk, 1); err != nil {
				return nil, err
			}
		}
		if perr = errors.Join(perr, wait(), prof.save(ctx, "heap?gc=1", "heap-after")); perr != nil {
			r.logf("  profiles: %v", perr)
		}
	}

	r.logf("scale: %d concurrent streams", o.ScaleStreams)
	idle, err := ReadMem(a.c.pid())
	if err != nil {
		return nil, err
	}
	sr.IdleRSS = idle.RSS
	peakRSS := sampleRSS([]int{a.c.pid()})
	// At least long enough for every stream to run to its end twice.
	d := max(o.Duration, 2*time.Duration(o.Chunks+2)*o.ScaleChunkDelay+time.Second)
	client := NewClient(o.ScaleStreams)
	sr.Streams, err = RunLoad(ctx, LoadConfig{
		URL: a.url, Mode: ClosedLoop, Concurrency: o.ScaleStreams, Duration: d, Stream: true,
		Bodies: [][]byte{chatBody(scaleSlow, true)}, Auths: auths, Client: client, Timeout: time.Minute,
	})
	client.CloseIdleConnections()
	sr.StreamRSS = peakRSS()
	if err != nil {
		return nil, err
	}
	m, err := ReadMem(a.c.pid())
	if err != nil {
		return nil, err
	}
	// VmHWM can read a little below a VmRSS sampled earlier once the
	// runtime has returned memory (madvise), so the peak is the larger.
	sr.StreamHWM = max(m.HWM, sr.StreamRSS)
	return sr, nil
}

// modelRef names a model for an admin PUT.
type modelRef struct{ id, name, pk string }
