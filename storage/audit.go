package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// AuditRecord is one entry of the admin audit log: an admin write (its
// outcome whatever it was) or a failed admin authentication. It names the
// admin key by id, never by the key, and shows secrets only as changed.
type AuditRecord struct {
	// Time is when the write was answered (UTC).
	Time time.Time `json:"time"`
	// AdminKeyID is the id of the admin key that authenticated the write;
	// empty for a failed authentication.
	AdminKeyID string `json:"admin_key_id,omitempty"`
	// Source is the client's address (a host, without the port).
	Source string `json:"source"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// Kind is the resource kind as URLs name it (provider_keys, models,
	// apikeys), "apply" for a whole configuration, or AuditKindAuth.
	Kind string `json:"kind"`
	// ResourceID and Name are the resource's id and display name; empty
	// for an apply (its Changes name each resource) and for a failed
	// authentication.
	ResourceID string `json:"id,omitempty"`
	Name       string `json:"name,omitempty"`
	// Changes summarises the write field by field, in the shape of an
	// apply's changes: one Change for a single write, the applied changes
	// for an apply; none for a write that failed. Secret fields appear
	// only as SecretChange.
	Changes []Change `json:"changes,omitempty"`
	// Status is the HTTP status the write was answered with; Error its
	// error message when it failed (or the reason authentication failed).
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
}

// AuditKindAuth is the Kind of a failed admin authentication.
const AuditKindAuth = "auth"

// Bounds of AuditQuery.Limit.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AuditQuery selects audit records.
type AuditQuery struct {
	// Since and Until bound the records' Time: Since inclusive, Until
	// exclusive; a zero time leaves that side open.
	Since, Until time.Time
	// Limit caps the records returned, newest first: 0 means
	// DefaultAuditLimit; more than MaxAuditLimit is an error.
	Limit int
}

// Validate checks the query and sets a zero Limit to DefaultAuditLimit.
// Its errors are ErrInvalid.
func (q *AuditQuery) Validate() error {
	switch {
	case q.Limit < 0 || q.Limit > MaxAuditLimit:
		return FieldErrorf("limit", "must be between 1 and %d (got %d)", MaxAuditLimit, q.Limit)
	case q.Limit == 0:
		q.Limit = DefaultAuditLimit
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return FieldErrorf("until", "must not be before since (%s)", q.Since.UTC().Format(time.RFC3339))
	}
	return nil
}

// AuditReader lists audit records: the database stores, and the admin API
// client in remote mode.
type AuditReader interface {
	// ListAudit returns the records q selects, newest first. It returns
	// ErrInvalid for a query that fails Validate, and an empty (not nil)
	// slice when nothing matches.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
}

// AuditStore keeps the audit log. It is apart from Store, like
// UsageStore: a store may implement it.
type AuditStore interface {
	AuditReader
	// AppendAudit stores one record. It does not change the store
	// revision (the log is not configuration).
	AppendAudit(ctx context.Context, rec AuditRecord) error
	// PruneAudit deletes the records from before before and returns how
	// many it deleted.
	PruneAudit(ctx context.Context, before time.Time) (int64, error)
}

// SecretChange is how a changed secret field is shown: that it changed,
// never its value (the form Plan uses for apply).
func SecretChange(field string) FieldChange {
	return FieldChange{Field: field, Old: secretShown, New: secretShown, Secret: true}
}

// AuditColumns are the columns of an audit_records row, in the order
// AuditArgs and ScanAuditRows use; the SQLite and PostgreSQL stores share them.
const AuditColumns = "ts, admin_key_id, source, method, path, kind, resource_id, name, changes, status, error"

// AuditArgs are the column values of rec, in AuditColumns' order: the
// time in Unix microseconds, the changes as JSON.
func AuditArgs(rec *AuditRecord) ([]any, error) {
	changes, err := json.Marshal(nonNilChanges(rec.Changes))
	if err != nil {
		return nil, fmt.Errorf("encode audit changes: %w", err)
	}
	return []any{rec.Time.UnixMicro(), rec.AdminKeyID, rec.Source, rec.Method, rec.Path,
		rec.Kind, rec.ResourceID, rec.Name, string(changes), rec.Status, rec.Error}, nil
}

// AuditRows are the rows of a query of AuditColumns: a database/sql
// *Rows or a pgx Rows.
type AuditRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanAuditRows reads every row of rows; the slice is empty, not nil,
// when there is none. The caller closes rows.
func ScanAuditRows(rows AuditRows) ([]AuditRecord, error) {
	out := []AuditRecord{}
	for rows.Next() {
		rec, err := scanAudit(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// scanAudit reads one row of AuditColumns with scan (a Rows' Scan).
func scanAudit(scan func(dest ...any) error) (AuditRecord, error) {
	var (
		rec     AuditRecord
		ts      int64
		changes string
	)
	if err := scan(&ts, &rec.AdminKeyID, &rec.Source, &rec.Method, &rec.Path,
		&rec.Kind, &rec.ResourceID, &rec.Name, &changes, &rec.Status, &rec.Error); err != nil {
		return AuditRecord{}, err
	}
	rec.Time = time.UnixMicro(ts).UTC()
	if err := json.Unmarshal([]byte(changes), &rec.Changes); err != nil {
		return AuditRecord{}, fmt.Errorf("decode audit changes: %w", err)
	}
	if len(rec.Changes) == 0 {
		rec.Changes = nil
	}
	return rec, nil
}

// AuditWhere is the WHERE clause (with its leading space, or empty) and
// arguments selecting q's time range; param numbers the n-th placeholder
// in the store's dialect ("?" or "$n").
func AuditWhere(q AuditQuery, param func(n int) string) (string, []any) {
	var (
		conds []string
		args  []any
	)
	if !q.Since.IsZero() {
		args = append(args, q.Since.UnixMicro())
		conds = append(conds, "ts >= "+param(len(args)))
	}
	if !q.Until.IsZero() {
		args = append(args, q.Until.UnixMicro())
		conds = append(conds, "ts < "+param(len(args)))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func nonNilChanges(cs []Change) []Change {
	if cs == nil {
		return []Change{}
	}
	return cs
}
