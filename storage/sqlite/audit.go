package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/aisix/aisix/storage"
)

var _ storage.AuditStore = (*Store)(nil)

// AppendAudit stores one audit record on the writer connection. It does
// not bump the store revision: the log is not configuration.
func (s *Store) AppendAudit(ctx context.Context, rec storage.AuditRecord) error {
	args, err := storage.AuditArgs(&rec)
	if err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO audit_records (`+storage.AuditColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...); err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	return nil
}

// ListAudit returns the records q selects, newest first, from the reader
// pool. It returns ErrInvalid for a query that fails Validate.
func (s *Store) ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditRecord, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	where, args := storage.AuditWhere(q, func(int) string { return "?" })
	rows, err := s.reader.QueryContext(ctx, `SELECT `+storage.AuditColumns+` FROM audit_records`+where+
		` ORDER BY ts DESC, id DESC LIMIT ?`, append(args, q.Limit)...)
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

// PruneAudit deletes the records from before before, at most pruneChunk
// rows per statement so the writer connection is never held for long.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.writer.ExecContext(ctx, `DELETE FROM audit_records WHERE id IN
			(SELECT id FROM audit_records WHERE ts < ? LIMIT ?)`, before.UnixMicro(), pruneChunk)
		if err != nil {
			return total, fmt.Errorf("prune audit records: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune audit records: %w", err)
		}
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}
