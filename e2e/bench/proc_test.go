package bench

import (
	"encoding/binary"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ProcStat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "4242 (aisix) S 4000 4242 4000 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 8 0 12345 1000000 5000 18446744073709551615",
			want: ProcStat{PPID: 4000, UTime: 250, STime: 75},
		},
		{
			name: "command with spaces and parentheses",
			in:   "7 (nginx: worker (x) y) S 6 7 7 0 -1 4194624 10 0 0 0 3 4 0 0 20 0 1 0 99 1 2 3\n",
			want: ProcStat{PPID: 6, UTime: 3, STime: 4},
		},
		{name: "truncated", in: "1 (init) S 0 1 1 0", wantErr: true},
		{name: "no command", in: "1 init S 0 1 1 0 -1 0 0 0 0 0 1 2", wantErr: true},
		{name: "bad utime", in: "1 (a) S 0 1 1 0 -1 0 0 0 0 0 x 2 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseStat error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseStat = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestProcStatCPU(t *testing.T) {
	s := ProcStat{UTime: 3, STime: 2}
	want := 5 * time.Second / time.Duration(ClockTicks)
	if got := s.CPU(); got != want {
		t.Errorf("CPU() = %v, want %v (%d ticks/s)", got, want, ClockTicks)
	}
}

const statusSample = `Name:	aisix
Umask:	0022
State:	S (sleeping)
Pid:	4242
VmPeak:	 1261024 kB
VmSize:	 1261024 kB
VmHWM:	   28712 kB
VmRSS:	   25100 kB
RssAnon:	   12000 kB
Threads:	8
`

func TestParseStatusKB(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		field   string
		want    int64
		wantErr bool
	}{
		{"VmHWM", statusSample, "VmHWM", 28712 * 1024, false},
		{"VmRSS", statusSample, "VmRSS", 25100 * 1024, false},
		{"prefix of another field is not matched", "VmRSSx:\t1 kB\nVmRSS:\t2 kB\n", "VmRSS", 2048, false},
		{"missing", statusSample, "VmSwap", 0, true},
		{"malformed", "VmHWM:\tlots\n", "VmHWM", 0, true},
		{"no unit", "VmHWM:\t12\n", "VmHWM", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatusKB([]byte(tt.in), tt.field)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseAuxv(t *testing.T) {
	var b []byte
	for _, kv := range [][2]uint64{{6, 4096}, {atClkTck, 250}, {0, 0}, {atClkTck, 1}} {
		b = binary.NativeEndian.AppendUint64(b, kv[0])
		b = binary.NativeEndian.AppendUint64(b, kv[1])
	}
	if got := parseAuxv(b, atClkTck); got != 250 {
		t.Errorf("AT_CLKTCK = %d, want 250", got)
	}
	if got := parseAuxv(b, 99); got != 0 {
		t.Errorf("absent key = %d, want 0", got)
	}
	if got := parseAuxv(b[:20], atClkTck); got != 0 {
		t.Errorf("key past a truncated vector = %d, want 0", got)
	}
}

func TestReadSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	// Burn some CPU so that at least one clock tick is charged.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
	}
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() {
		t.Errorf("PPID = %d, want %d", st.PPID, os.Getppid())
	}
	if st.CPU() <= 0 {
		t.Errorf("CPU = %v after 50ms of spinning", st.CPU())
	}
	m, err := ReadMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("mem = %+v, want 0 < RSS <= HWM", m)
	}
	kids, err := ChildPIDs(os.Getppid())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range kids {
		found = found || k == os.Getpid()
	}
	if !found {
		t.Errorf("ChildPIDs(parent) = %v, does not list this process %d", kids, os.Getpid())
	}
}

func TestParseLoadAvg(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"1.91 3.68 2.44 3/512 12345\n", 1.91, false},
		{"", 0, true},
		{"x 1 2", 0, true},
	}
	for _, tt := range tests {
		got, err := parseLoadAvg([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseLoadAvg(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
