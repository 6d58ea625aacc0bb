package storage

import (
	"errors"
	"fmt"
	"strings"
)

// Domain error kinds. Every error a Store returns for a caller mistake wraps
// exactly one of them, so callers classify with errors.Is and each boundary
// (admin API, admin client, CLI) translates them in one place.
var (
	// ErrNotFound means the named resource does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the write clashes with existing data: a duplicate
	// unique field, or a delete of something still referenced.
	ErrConflict = errors.New("conflict")
	// ErrInvalid means the resource fails validation or references something
	// that does not exist.
	ErrInvalid = errors.New("invalid")
	// ErrRevisionMismatch means an update named an expected revision that is
	// not the stored one (optimistic concurrency, If-Match).
	ErrRevisionMismatch = errors.New("revision mismatch")
)

// Error is a domain error: a kind (one of the Err* sentinels) and a message
// written for the person who made the request.
type Error struct {
	Kind error
	// Field is the JSON path of the offending field, when there is one.
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap lets errors.Is match the kind.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an *Error of the given kind.
func Errorf(kind error, format string, a ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, a...)}
}

// FieldErrorf returns an ErrInvalid *Error naming the offending field.
func FieldErrorf(field, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	return &Error{Kind: ErrInvalid, Field: field, Message: field + ": " + msg}
}

// Message returns the human message of err: the Message of a domain error,
// or err.Error() for anything else. Errors joined with errors.Join (Plan
// reports every error of a Desired at once) give their messages one a line.
func Message(err error) string {
	if errs := Joined(err); errs != nil {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = Message(e)
		}
		return strings.Join(msgs, "\n")
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// Joined returns the errors err joins when it is several domain errors
// reported at once (errors.Join of *Error values, as Plan returns), and
// nil for anything else, a single error included.
func Joined(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	errs := j.Unwrap()
	if len(errs) < 2 {
		return nil
	}
	for _, e := range errs {
		var de *Error
		if !errors.As(e, &de) {
			return nil
		}
	}
	return errs
}
