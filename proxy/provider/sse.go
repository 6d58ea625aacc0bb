package provider

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrEventTooLarge is returned by SSEReader.Next for an event whose data
// exceeds the reader's limit.
var ErrEventTooLarge = errors.New("server-sent event too large")

// SSEEvent is one dispatched server-sent event. Its slices are valid until
// the next call to Next.
type SSEEvent struct {
	// Name is the event field ("" for the default "message").
	Name []byte
	// Data is the data fields joined by "\n".
	Data []byte
}

// SSEReader parses a text/event-stream. It follows the WHATWG rules for
// fields (data lines joined with "\n", one optional space after the colon,
// comment lines ignored, an event dispatched on a blank line), with two
// leniencies real upstreams need: a final event that is not followed by a
// blank line is still dispatched at EOF, and a lone "\r" is not treated as
// a line end (only "\n" and "\r\n" are).
type SSEReader struct {
	br      *bufio.Reader
	max     int
	line    []byte
	data    []byte
	name    []byte
	hasData bool
	eof     bool
}

// NewSSEReader returns a reader over br whose events may hold at most max
// bytes of data (max <= 0 means 4 MiB).
func NewSSEReader(br *bufio.Reader, max int) *SSEReader {
	s := &SSEReader{}
	s.Reset(br, max)
	return s
}

// Reset makes s read from br, keeping its buffers.
func (s *SSEReader) Reset(br *bufio.Reader, max int) {
	if max <= 0 {
		max = 4 << 20
	}
	*s = SSEReader{br: br, max: max, line: s.line[:0], data: s.data[:0], name: s.name[:0]}
}

// readLine returns the next line without its terminator. The slice is valid
// until the next call.
func (s *SSEReader) readLine() ([]byte, error) {
	b, err := s.br.ReadSlice('\n')
	if err == nil {
		return trimEOL(b), nil
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		s.line = append(s.line[:0], b...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(s.line) > s.max {
				return nil, ErrEventTooLarge
			}
			b, err = s.br.ReadSlice('\n')
			s.line = append(s.line, b...)
		}
		if err == nil {
			return trimEOL(s.line), nil
		}
		b = s.line
	}
	if err == io.EOF && len(b) > 0 {
		// A last line without a terminator.
		s.eof = true
		return trimEOL(b), nil
	}
	return nil, err
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// Next returns the next event. It returns io.EOF when the stream ends
// cleanly, and the underlying read error otherwise.
func (s *SSEReader) Next() (SSEEvent, error) {
	s.data = s.data[:0]
	s.name = s.name[:0]
	s.hasData = false
	for {
		if s.eof {
			return s.flushAtEOF()
		}
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF {
				return s.flushAtEOF()
			}
			return SSEEvent{}, err
		}
		if len(line) == 0 {
			if s.hasData {
				return SSEEvent{Name: s.name, Data: s.data}, nil
			}
			s.name = s.name[:0]
			continue
		}
		if line[0] == ':' {
			continue // comment
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if s.hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			s.hasData = true
			if len(s.data) > s.max {
				return SSEEvent{}, ErrEventTooLarge
			}
		case "event":
			s.name = append(s.name[:0], value...)
		}
		// id, retry and unknown fields are ignored.
	}
}

func (s *SSEReader) flushAtEOF() (SSEEvent, error) {
	if s.hasData {
		s.hasData = false
		ev := SSEEvent{Name: s.name, Data: s.data}
		return ev, nil
	}
	return SSEEvent{}, io.EOF
}

// AppendData appends an SSE frame carrying data (one "data:" line per line
// of data, then a blank line) to dst.
func AppendData(dst, data []byte) []byte {
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		dst = append(dst, "data: "...)
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		data = data[i+1:]
	}
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...)
}

// AppendEvent appends an SSE event: an event line for name (left out when
// name is empty, or is not one line: it must never add lines of its own),
// then data as data lines (AppendData).
func AppendEvent(dst, name, data []byte) []byte {
	if len(name) > 0 && !bytes.ContainsAny(name, "\r\n") {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	return AppendData(dst, data)
}
