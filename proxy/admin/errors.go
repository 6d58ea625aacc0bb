package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/aisix/aisix/storage"
)

// apiError is a request-level error with its HTTP status: a malformed body,
// a missing key, a wrong method. Domain errors from the store are mapped in
// classify instead.
type apiError struct {
	status int
	field  string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, a ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, a...)}
}

// classify maps any handler error to a status and the error body. It is the
// one place where errors become HTTP.
func (s *Server) classify(err error) (int, errorBody) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, errorBody{ErrorMsg: ae.msg, Field: ae.field}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, errorBody{ErrorMsg: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	}
	kinds := []struct {
		kind   error
		status int
		msg    string
	}{
		{storage.ErrInvalid, http.StatusBadRequest, "invalid request"},
		{storage.ErrNotFound, http.StatusNotFound, "resource not found"},
		{storage.ErrConflict, http.StatusConflict, "conflict with an existing resource"},
		{storage.ErrRevisionMismatch, http.StatusPreconditionFailed, "revision mismatch: the resource changed since it was read"},
	}
	for _, k := range kinds {
		if !errors.Is(err, k.kind) {
			continue
		}
		body := errorBody{ErrorMsg: k.msg}
		var se *storage.Error
		if errors.As(err, &se) && se.Message != "" {
			body = errorBody{ErrorMsg: se.Message, Field: se.Field}
		}
		if errs := storage.Joined(err); errs != nil {
			// Several errors at once (an apply): each one, and all of them
			// one a line as the message.
			body = errorBody{ErrorMsg: storage.Message(err)}
			for _, e := range errs {
				body.Errors = append(body.Errors, errorBodyOf(e))
			}
		}
		return k.status, body
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, errorBody{ErrorMsg: "request cancelled or timed out"}
	}
	return http.StatusInternalServerError, errorBody{ErrorMsg: "internal error"}
}

// errorBodyOf is one of several errors answered at once: its message and
// field, and the kind's name when it is not the response's own.
func errorBodyOf(err error) errorBody {
	body := errorBody{ErrorMsg: storage.Message(err)}
	var se *storage.Error
	if errors.As(err, &se) {
		body.Field = se.Field
		body.Kind = kindName(se.Kind)
	}
	return body
}

// Kind names of an errorBody within errors.
var kindNames = map[error]string{
	storage.ErrInvalid:          "invalid",
	storage.ErrNotFound:         "not_found",
	storage.ErrConflict:         "conflict",
	storage.ErrRevisionMismatch: "revision_mismatch",
}

func kindName(kind error) string { return kindNames[kind] }

// kindOf is the domain error a kind name stands for, nil for none.
func kindOf(name string) error {
	for k, n := range kindNames {
		if n == name {
			return k
		}
	}
	return nil
}

// writeError answers err in the JSON envelope and returns the status sent.
// Errors that are not the client's fault are logged in full here.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	status, body := s.classify(err)
	if status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelError, "admin request failed",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.String("error", err.Error()),
		)
	}
	writeJSON(w, status, body)
	return status
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value here is built from plain structs; this cannot happen
		// short of a programming error, and the envelope still holds.
		status = http.StatusInternalServerError
		b = []byte(`{"error_msg":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeBody reads r's JSON body into dst: application/json only, at most
// maxBody bytes, no unknown fields, nothing after the value.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	return s.decodeBodyUpTo(w, r, dst, s.maxBody)
}

// decodeBodyUpTo is decodeBody with its own cap, for the one body that
// holds a whole configuration (POST /admin/v1/apply).
func (s *Server) decodeBodyUpTo(w http.ResponseWriter, r *http.Request, dst any, maxBody int64) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/json (none given)")
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/json (got %q)", ct)
	}
	if r.ContentLength > maxBody {
		return &http.MaxBytesError{Limit: maxBody}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(http.StatusBadRequest, "read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, "request body is empty: expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(body, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "invalid JSON at %s: unexpected data after the JSON object", position(body, dec.InputOffset()))
	}
	return nil
}

// jsonError turns a decoding error into a 400 that says where and what.
func jsonError(body []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, "invalid JSON at %s: %s", position(body, se.Offset), se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "invalid JSON at %s: the body ends before the JSON value is complete", position(body, int64(len(body))))
	case errors.As(err, &te):
		if te.Field == "" {
			return errorf(http.StatusBadRequest, "request body: expected a JSON object, got %s", te.Value)
		}
		return &apiError{
			status: http.StatusBadRequest,
			field:  te.Field,
			msg:    fmt.Sprintf("field %q: expected %s", te.Field, jsonKind(te.Type)),
		}
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		if unq, err := strconv.Unquote(name); err == nil {
			return &apiError{status: http.StatusBadRequest, field: unq, msg: msg}
		}
	}
	return errorf(http.StatusBadRequest, "invalid JSON: %s", msg)
}

// position renders a byte offset of body as "line L, column C".
func position(body []byte, offset int64) string {
	if offset > int64(len(body)) {
		offset = int64(len(body))
	}
	if offset < 0 {
		offset = 0
	}
	before := body[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	// The decoder reports the offset just after the offending byte.
	if col < 1 {
		col = 1
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "object"
	}
}

// ifMatch parses an optional If-Match header: a revision, bare or quoted.
// It returns 0 when there is none (or "*"): an unconditional write.
func ifMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	unq := strings.TrimPrefix(v, "W/")
	if len(unq) >= 2 && unq[0] == '"' && unq[len(unq)-1] == '"' {
		unq = unq[1 : len(unq)-1]
	}
	rev, err := strconv.ParseInt(unq, 10, 64)
	if err != nil || rev <= 0 {
		return 0, errorf(http.StatusBadRequest, "If-Match must be a revision number such as \"3\" (got %q)", v)
	}
	return rev, nil
}
