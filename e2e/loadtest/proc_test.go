package main

import (
	"strings"
	"testing"
	"time"
)

// statLine is a /proc/<pid>/stat line of a process named comm that used
// utime and stime clock ticks (fields 14 and 15).
func statLine(pid, comm, utime, stime string) string {
	return pid + " (" + comm + ") S 1 31563 9322 0 -1 4194304 101 0 0 0 " + utime + " " + stime +
		" 0 0 20 0 1 0 53750 3133440 378 18446744073709551615 94338558115840 0\n"
}

func TestStatCPUTime(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
	}{
		{"plain", statLine("4242", "vault", "1234", "56"), 12900 * time.Millisecond},
		{"space in comm", statLine("7", "my plugin", "100", "0"), time.Second},
		{"parenthesis and space in comm", statLine("7", "a) 9 9 (b", "3", "4"), 70 * time.Millisecond},
		{"only parentheses", statLine("7", ")) ((", "0", "250"), 2500 * time.Millisecond},
		{"empty comm", statLine("7", "", "1", "1"), 20 * time.Millisecond},
	} {
		got, err := statCPUTime([]byte(tc.stat))
		if err != nil || got != tc.want {
			t.Errorf("%s: statCPUTime = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestStatCPUTimeRejectsMalformed(t *testing.T) {
	for name, stat := range map[string]string{
		"empty":             "",
		"no parenthesis":    "4242 vault S 1 2 3 4 5 6 7 8 9 10 11 12 13 14",
		"truncated":         "4242 (vault) S 1 2 3 4 5 6 7 8 9 10",
		"utime not numeric": statLine("1", "vault", "x", "1"),
		"stime not numeric": statLine("1", "vault", "1", "-"),
	} {
		if d, err := statCPUTime([]byte(stat)); err == nil {
			t.Errorf("%s: statCPUTime = %v, want an error", name, d)
		}
	}
}

const status = `Name:	vault-plugin-se
Umask:	0022
State:	S (sleeping)
Tgid:	32474
Pid:	32474
PPid:	32425
TracerPid:	0
VmPeak:	 1290220 kB
VmRSS:	   29360 kB
RssAnon:	   12000 kB
`

func TestStatusFields(t *testing.T) {
	if got := statusRSS([]byte(status)); got != 29360 {
		t.Errorf("statusRSS = %d, want 29360", got)
	}
	if got := statusParent([]byte(status)); got != 32425 {
		t.Errorf("statusParent = %d, want 32425", got)
	}
	// A kernel thread has no VmRSS line; a process that exited has no file.
	kthread := strings.ReplaceAll(status, "VmRSS:\t   29360 kB\n", "")
	for name, b := range map[string][]byte{"no VmRSS": []byte(kthread), "empty": nil} {
		if got := statusRSS(b); got != -1 {
			t.Errorf("%s: statusRSS = %d, want -1", name, got)
		}
	}
	if got := statusParent(nil); got != 0 {
		t.Errorf("statusParent(nil) = %d, want 0", got)
	}
}

func TestCmdlineName(t *testing.T) {
	for cmdline, want := range map[string]string{
		"/work/bin/vault\x00server\x00-dev\x00":        "vault",
		"/tmp/plugins/vault-plugin-secrets-concur\x00": "vault-plugin-secrets-concur",
		"vault-plugin-secrets-concur-b":                "vault-plugin-secrets-concur-b",
		"/usr/bin/my vault\x00":                        "my vault",
		"":                                             "",
		"\x00bogus":                                    "",
		"/opt/vault/bin/vault-plugin-secrets-concur\x00--ca-cert=/etc/vault/x\x00": "vault-plugin-secrets-concur",
	} {
		if got := cmdlineName([]byte(cmdline)); got != want {
			t.Errorf("cmdlineName(%q) = %q, want %q", cmdline, got, want)
		}
	}
}

func TestMachineFiles(t *testing.T) {
	cpuinfo := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nprocessor\t: 1\nmodel name\t: other\n"
	if got := cpuModel([]byte(cpuinfo)); got != "AMD EPYC" {
		t.Errorf("cpuModel = %q, want AMD EPYC", got)
	}
	meminfo := "MemTotal:       24683584 kB\nMemFree:         1000000 kB\n"
	if got, err := memTotalMiB([]byte(meminfo)); err != nil || got != 24105 {
		t.Errorf("memTotalMiB = %d, %v; want 24105", got, err)
	}
	if _, err := memTotalMiB(nil); err == nil {
		t.Error("memTotalMiB(nil): no error")
	}
	if got := loadavg([]byte("5.12 3.00 1.45 7/145 31568\n")); got != "5.12 3.00 1.45" {
		t.Errorf("loadavg = %q", got)
	}
	if got := loadavg([]byte("5.12 3.00")); got != "" {
		t.Errorf("loadavg of a short file = %q, want empty", got)
	}
}

func TestMachineCPU(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	before := machineCPU([]byte("cpu  1000 0 500 8000 100 0 100 200 50 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	after := machineCPU([]byte("cpu  1300 0 600 8400 100 0 100 300 70 0\n"))
	if before == nil || after == nil {
		t.Fatal("machineCPU: nil")
	}
	if *before != (cpuTimes{total: 9900, busy: 1800, steal: 200}) {
		t.Errorf("before = %+v; the guest ticks are in user already, idle and iowait are not busy", *before)
	}
	if got := after.stealSince(before); got != 11.1 { // 100 of 900 ticks
		t.Errorf("stealSince = %v, want 11.1", got)
	}
	if got := after.busySince(before); got != 5*time.Second { // 500 ticks
		t.Errorf("busySince = %v, want 5s", got)
	}
	if got := before.stealSince(before); got != 0 {
		t.Errorf("stealSince itself = %v, want 0", got)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 3"} {
		if got := machineCPU([]byte(bad)); got != nil {
			t.Errorf("machineCPU(%q) = %+v, want nil", bad, got)
		}
	}
}
