package cmdutil

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// warnHandler is the slog handler management commands give the packages
// they open: warnings and errors become one "aisix: warning: …" line on
// stderr (the message only; attributes are for serve's structured logs),
// and nothing else is printed, so stdout stays the command's output.
type warnHandler struct{ w io.Writer }

// NewWarnLogger returns a logger that prints each warning or error as one
// line "aisix: warning: MESSAGE" on w and drops everything below.
func NewWarnLogger(w io.Writer) *slog.Logger { return slog.New(warnHandler{w: w}) }

func (h warnHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h warnHandler) Handle(_ context.Context, r slog.Record) error {
	msg := strings.TrimSpace(strings.ReplaceAll(r.Message, "\n", " "))
	_, err := fmt.Fprintf(h.w, "aisix: warning: %s\n", msg)
	return err
}

func (h warnHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h warnHandler) WithGroup(string) slog.Handler { return h }
