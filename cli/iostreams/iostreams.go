// Package iostreams carries the standard streams of a command together with
// what is known about them (terminal or not, colour or not), so commands
// never touch os.Stdout directly and tests can capture everything.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams is the I/O of one command invocation.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	color     bool
}

// System returns the process's streams, detecting terminals and NO_COLOR.
func System() *IOStreams {
	stdinTTY := isTerminal(os.Stdin)
	stdoutTTY := isTerminal(os.Stdout)
	_, noColor := os.LookupEnv("NO_COLOR")
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		stdinTTY: stdinTTY, stdoutTTY: stdoutTTY,
		color: stdoutTTY && !noColor && os.Getenv("TERM") != "dumb",
	}
}

// Test returns streams backed by buffers, none of them a terminal, and the
// buffers for stdin, stdout and stderr.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// IsStdinTTY reports whether standard input is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether standard output is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// ColorEnabled reports whether output may use colour.
func (s *IOStreams) ColorEnabled() bool { return s.color }

// SetTTY sets what the streams claim to be, for tests.
func (s *IOStreams) SetTTY(stdin, stdout bool) {
	s.stdinTTY, s.stdoutTTY = stdin, stdout
}

// StdinFd returns the file descriptor of stdin when it is a file, or -1.
func (s *IOStreams) StdinFd() int {
	if f, ok := s.In.(*os.File); ok {
		return int(f.Fd())
	}
	return -1
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
