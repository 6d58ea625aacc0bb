package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/resources"
)

// resourcesFile is serve's file mode (--resources, resources_file): the
// store is made to match the file, pruning what it does not name, at
// start-up and on every SIGHUP. The file is loaded and checked whole
// before anything is written, and the apply is one transaction, so an
// invalid file changes nothing and the last good configuration keeps
// serving.
type resourcesFile struct {
	path   string
	store  storage.Applier
	logger *slog.Logger
	mu     sync.Mutex
	state  admin.ResourcesFile
	// applied runs after an apply that changed the store (the routing
	// table's reload).
	applied func(ctx context.Context)
}

// newResourcesFile returns serve's file mode for path, or nil when path is
// empty. The store must be able to apply a whole file.
func newResourcesFile(path string, store any, logger *slog.Logger, applied func(context.Context)) (*resourcesFile, error) {
	if path == "" {
		return nil, nil
	}
	ap, ok := store.(storage.Applier)
	if !ok {
		return nil, errors.New("this store cannot apply a resources file")
	}
	return &resourcesFile{path: path, store: ap, logger: logger, applied: applied}, nil
}

// status is the file's state for GET /admin/v1/info.
func (r *resourcesFile) status() *admin.ResourcesFile {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state
	st.Path = r.path
	return &st
}

// apply loads the file and makes the store match it, and records how it
// went.
func (r *resourcesFile) apply(ctx context.Context) error {
	rev, err := r.applyFile(ctx)
	now := time.Now().UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.state.LastError, r.state.RejectedAt = err.Error(), &now
		return err
	}
	r.state.AppliedAt, r.state.AppliedRevision = &now, rev
	r.state.LastError, r.state.RejectedAt = "", nil
	return nil
}

func (r *resourcesFile) applyFile(ctx context.Context) (int64, error) {
	data, err := os.ReadFile(r.path)
	if err != nil {
		return 0, fmt.Errorf("resources file: %w", err)
	}
	f, err := resources.Load(r.path, data, resources.Options{})
	if err != nil {
		return 0, fmt.Errorf("resources file %s is invalid:\n%w", r.path, err)
	}
	for _, w := range f.Warnings {
		r.logger.Warn("resources file", "warning", w.Error())
	}
	res, err := r.store.Apply(ctx, f.Desired(), storage.ApplyOptions{Prune: true})
	if err != nil {
		return 0, fmt.Errorf("resources file %s: %w", r.path, err)
	}
	var created, updated, deleted int
	for _, c := range res.Changes {
		switch c.Action {
		case storage.ActionCreate:
			created++
		case storage.ActionUpdate:
			updated++
		case storage.ActionDelete:
			deleted++
		}
	}
	r.logger.Info("resources file applied", "file", r.path, "summary", f.Summary(),
		"created", created, "updated", updated, "deleted", deleted, "revision", res.Revision)
	if res.Applied && r.applied != nil {
		r.applied(ctx)
	}
	return res.Revision, nil
}

// watch applies the file again on every SIGHUP until ctx ends. A file
// that cannot be applied is logged and changes nothing.
func (r *resourcesFile) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := r.apply(ctx); err != nil {
				r.logger.Error("resources file rejected; the last good configuration keeps serving", "err", err.Error())
			}
		}
	}
}
