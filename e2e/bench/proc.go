package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ClockTicks is the kernel's USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat: read from AT_CLKTCK in /proc/self/auxv, 100 when that
// cannot be read.
var ClockTicks = clockTicks()

// atClkTck is the auxiliary vector entry for USER_HZ.
const atClkTck = 17

func clockTicks() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if hz := parseAuxv(b, atClkTck); hz > 0 {
		return int64(hz)
	}
	return 100
}

// parseAuxv returns the value of entry key in a native-endian 64-bit
// auxiliary vector, 0 when absent.
func parseAuxv(b []byte, key uint64) uint64 {
	for len(b) >= 16 {
		k := binary.NativeEndian.Uint64(b[:8])
		v := binary.NativeEndian.Uint64(b[8:16])
		if k == key {
			return v
		}
		if k == 0 {
			break
		}
		b = b[16:]
	}
	return 0
}

// ProcStat is what the rig reads from /proc/<pid>/stat.
type ProcStat struct {
	PPID int
	// UTime and STime are in clock ticks (see ClockTicks).
	UTime, STime uint64
}

// CPU returns utime+stime as a duration.
func (s ProcStat) CPU() time.Duration {
	return time.Duration((s.UTime + s.STime) * uint64(time.Second) / uint64(ClockTicks))
}

// ParseStat parses the contents of /proc/<pid>/stat. The command name (field
// 2) is in parentheses and may itself contain spaces and parentheses, so the
// fields are counted from the last ')'.
func ParseStat(b []byte) (ProcStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcStat{}, errors.New("parse stat: no command name")
	}
	// After ")": field 3 (state) onwards.
	f := bytes.Fields(b[i+1:])
	// utime is field 14 and stime field 15: indexes 11 and 12 from field 3.
	if len(f) < 13 {
		return ProcStat{}, fmt.Errorf("parse stat: %d fields after the command name, want at least 13", len(f))
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return ProcStat{}, fmt.Errorf("parse stat: ppid: %w", err)
	}
	ut, err := strconv.ParseUint(string(f[11]), 10, 64)
	if err != nil {
		return ProcStat{}, fmt.Errorf("parse stat: utime: %w", err)
	}
	st, err := strconv.ParseUint(string(f[12]), 10, 64)
	if err != nil {
		return ProcStat{}, fmt.Errorf("parse stat: stime: %w", err)
	}
	return ProcStat{PPID: ppid, UTime: ut, STime: st}, nil
}

// ParseStatusKB returns the value of a "Name:   1234 kB" line of
// /proc/<pid>/status (VmHWM, VmRSS, ...) in bytes.
func ParseStatusKB(b []byte, name string) (int64, error) {
	prefix := []byte(name + ":")
	for line := range bytes.Lines(b) {
		if !bytes.HasPrefix(line, prefix) {
			continue
		}
		f := bytes.Fields(line[len(prefix):])
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("parse status: malformed %s line %q", name, bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse status: %s: %w", name, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("parse status: no %s line", name)
}

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (ProcStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStat{}, err
	}
	return ParseStat(b)
}

// Mem is a process's resident memory, in bytes.
type Mem struct {
	// HWM is the peak resident set size (VmHWM).
	HWM int64
	// RSS is the current resident set size (VmRSS).
	RSS int64
}

// ReadMem reads VmHWM and VmRSS from /proc/<pid>/status.
func ReadMem(pid int) (Mem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Mem{}, err
	}
	hwm, err := ParseStatusKB(b, "VmHWM")
	if err != nil {
		return Mem{}, err
	}
	rss, err := ParseStatusKB(b, "VmRSS")
	if err != nil {
		return Mem{}, err
	}
	return Mem{HWM: hwm, RSS: rss}, nil
}

// ChildPIDs lists the processes whose parent is ppid.
func ChildPIDs(ppid int) ([]int, error) {
	paths, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the process has gone
		}
		st, err := ParseStat(b)
		if err != nil || st.PPID != ppid {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// Usage is the summed CPU time and memory of a group of processes.
type Usage struct {
	CPU time.Duration
	Mem Mem
}

// ReadUsage sums CPU time and memory over pids.
func ReadUsage(pids []int) (Usage, error) {
	var u Usage
	for _, pid := range pids {
		st, err := ReadStat(pid)
		if err != nil {
			return Usage{}, err
		}
		m, err := ReadMem(pid)
		if err != nil {
			return Usage{}, err
		}
		u.CPU += st.CPU()
		u.Mem.HWM += m.HWM
		u.Mem.RSS += m.RSS
	}
	return u, nil
}

// readLoadAvg returns the 1-minute load average from /proc/loadavg.
func readLoadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	return parseLoadAvg(b)
}

func parseLoadAvg(b []byte) (float64, error) {
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, errors.New("parse loadavg: empty")
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil {
		return 0, fmt.Errorf("parse loadavg: %w", err)
	}
	return v, nil
}
