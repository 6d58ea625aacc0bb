package serve

import (
	"context"
	"log/slog"
	"time"

	"github.com/aisix/aisix/storage"
)

// auditPruneEvery is how often serve prunes the audit log.
const auditPruneEvery = time.Hour

// auditPruner deletes the admin audit log's records older than its
// retention, at start and every interval, until its context ends.
type auditPruner struct {
	store     storage.AuditStore
	retention time.Duration
	every     time.Duration
	now       func() time.Time
	logger    *slog.Logger
	// pruned, when set, is called after each prune (tests wait on it).
	pruned func(n int64, err error)
}

// run prunes until ctx ends; with no retention (0: keep forever) it
// returns at once.
func (p *auditPruner) run(ctx context.Context) {
	if p.retention <= 0 {
		return
	}
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	for {
		p.prune(ctx)
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// prune deletes what is older than the retention once, and logs how many
// records it deleted (when any) or why it failed.
func (p *auditPruner) prune(ctx context.Context) {
	n, err := p.store.PruneAudit(ctx, p.now().Add(-p.retention))
	switch {
	case err != nil && ctx.Err() == nil:
		p.logger.Error("prune audit log", "err", err)
	case n > 0:
		p.logger.Info("pruned audit log", "records", n, "retention", p.retention.String())
	}
	if p.pruned != nil {
		p.pruned(n, err)
	}
}
