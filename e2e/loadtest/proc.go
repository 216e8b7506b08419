package main

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Parsers of /proc contents: bytes in, values out, so that tests can feed
// them fixed files. procfs.go reads the files.

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// statCPUTime is the user+system CPU time in a /proc/<pid>/stat line. The
// command name (field 2) is in parentheses and may itself hold spaces and
// parentheses, so fields are counted from the last ')'.
func statCPUTime(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name in parentheses")
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	user, err := strconv.ParseInt(string(f[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	system, err := strconv.ParseInt(string(f[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return time.Duration(user+system) * time.Second / clockTicks, nil
}

// field is the value of the first line of a "Key: value" file (status,
// meminfo, cpuinfo) that starts with key, trimmed; "" when there is none.
func field(b []byte, key string) string {
	for line := range bytes.Lines(b) {
		if bytes.HasPrefix(line, []byte(key)) {
			return strings.TrimSpace(string(line[len(key):]))
		}
	}
	return ""
}

// kib reads a "123 kB" value of status or meminfo.
func kib(v string) (int64, error) {
	return strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
}

// statusRSS is the VmRSS in a /proc/<pid>/status in KiB, or -1.
func statusRSS(status []byte) int64 {
	n, err := kib(field(status, "VmRSS:"))
	if err != nil {
		return -1
	}
	return n
}

// statusParent is the PPid in a /proc/<pid>/status, or 0.
func statusParent(status []byte) int {
	n, _ := strconv.Atoi(field(status, "PPid:"))
	return n
}

// cmdlineName is the base name of argv[0] in a /proc/<pid>/cmdline.
func cmdlineName(cmdline []byte) string {
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	if len(argv0) == 0 {
		return ""
	}
	return filepath.Base(string(argv0))
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo []byte) string {
	return strings.TrimSpace(strings.TrimPrefix(field(cpuinfo, "model name"), ":"))
}

// memTotalMiB is the MemTotal of /proc/meminfo in MiB.
func memTotalMiB(meminfo []byte) (int64, error) {
	n, err := kib(field(meminfo, "MemTotal:"))
	return n / 1024, err
}

// loadavg is the three load averages of /proc/loadavg, or "".
func loadavg(b []byte) string {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// cpuTimes are the machine's CPU counters from /proc/stat, in clock ticks.
type cpuTimes struct{ total, busy, steal float64 }

// machineCPU reads the aggregate "cpu" line of /proc/stat; nil when there is none.
func machineCPU(stat []byte) *cpuTimes {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return nil
	}
	t := &cpuTimes{}
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i < 8 { // user..steal; guest is already counted in user
			t.total += x
		}
		if i < 8 && i != 3 && i != 4 { // all but idle and iowait
			t.busy += x
		}
		if i == 7 {
			t.steal = x
		}
	}
	return t
}

// stealSince is the share of CPU time stolen by the hypervisor since o, in percent.
func (t *cpuTimes) stealSince(o *cpuTimes) float64 {
	if t.total <= o.total {
		return 0
	}
	return round(100*(t.steal-o.steal)/(t.total-o.total), 1)
}

// busySince is the CPU time the whole machine was busy since o.
func (t *cpuTimes) busySince(o *cpuTimes) time.Duration {
	return time.Duration((t.busy - o.busy) * float64(time.Second) / clockTicks)
}
