package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aisix/aisix/storage"
)

var _ storage.AuditStore = (*Store)(nil)

// AppendAudit stores one audit record. It neither bumps the store
// revision nor notifies: the log is not configuration.
func (s *Store) AppendAudit(ctx context.Context, rec storage.AuditRecord) error {
	args, err := storage.AuditArgs(&rec)
	if err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO audit_records (`+storage.AuditColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, args...); err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	return nil
}

// ListAudit returns the records q selects, newest first. It returns
// ErrInvalid for a query that fails Validate.
func (s *Store) ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditRecord, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	where, args := storage.AuditWhere(q, func(n int) string { return "$" + strconv.Itoa(n) })
	args = append(args, q.Limit)
	rows, err := s.pool.Query(ctx, `SELECT `+storage.AuditColumns+` FROM audit_records`+where+
		` ORDER BY ts DESC, id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list audit records: %w", err)
	}
	defer rows.Close()
	out, err := storage.ScanAuditRows(rows)
	if err != nil {
		return nil, fmt.Errorf("list audit records: %w", err)
	}
	return out, nil
}

// PruneAudit deletes the records from before before, pruneChunk rows per
// statement.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM audit_records WHERE id IN
			(SELECT id FROM audit_records WHERE ts < $1 LIMIT $2)`, before.UnixMicro(), pruneChunk)
		if err != nil {
			return total, fmt.Errorf("prune audit records: %w", err)
		}
		n := tag.RowsAffected()
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}
