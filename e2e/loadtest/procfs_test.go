package main

import (
	"reflect"
	"testing"
	"testing/fstest"
	"time"
)

// fakeProc is a /proc with the given processes: pid -> argv0, parent, utime, stime, VmRSS.
func fakeProc(procs map[string][5]string) procfs {
	fsys := fstest.MapFS{
		"loadavg": {Data: []byte("0.50 0.40 0.30 1/100 999\n")},
		"stat":    {Data: []byte("cpu  100 0 100 800 0 0 0 0 0 0\n")},
		"self":    {Data: []byte("not a pid")},
	}
	for pid, p := range procs {
		fsys[pid+"/cmdline"] = &fstest.MapFile{Data: []byte(p[0] + "\x00server\x00")}
		fsys[pid+"/status"] = &fstest.MapFile{Data: []byte("Name:\tx\nPPid:\t" + p[1] + "\nVmRSS:\t  " + p[4] + " kB\n")}
		fsys[pid+"/stat"] = &fstest.MapFile{Data: []byte(statLine(pid, "x", p[2], p[3]))}
	}
	return procfs{fsys}
}

func TestFindProcess(t *testing.T) {
	p := fakeProc(map[string][5]string{
		"999":  {"/bin/vault", "1", "0", "0", "1"},
		"1000": {"/other/vault", "1", "0", "0", "1"}, // newer, and after 999 in numeric but not in name order
		"1001": {"/x/vault-plugin-secrets-concur", "999", "0", "0", "1"},
		"1002": {"/x/vault-plugin-secrets-concur", "1000", "0", "0", "1"},
		"1003": {"/x/vault-plugin-secrets-concur-b", "1000", "0", "0", "1"},
		"1004": {"/x/vault-plugin-secrets-concur", "1000", "0", "0", "1"},
		"1005": {"/x/vault.sh", "1", "0", "0", "1"},
	})
	for _, tc := range []struct {
		name   string
		parent int
		want   int
	}{
		{"vault", 0, 1000},
		{"vault-plugin-secrets-concur", 999, 1001},
		{"vault-plugin-secrets-concur", 1000, 1004},
		{"vault-plugin-secrets-concur", 0, 1004},
		{"vault-plugin-secrets-concur-b", 1000, 1003},
		{"vault-plugin-secrets-concur-b", 999, 0},
		{"vault-plugin", 0, 0},
	} {
		if got := p.findProcess(tc.name, tc.parent); got != tc.want {
			t.Errorf("findProcess(%q, %d) = %d, want %d", tc.name, tc.parent, got, tc.want)
		}
	}
}

func TestProcessCPU(t *testing.T) {
	p := fakeProc(map[string][5]string{
		"10": {"vault", "1", "200", "100", "2048"},
		"11": {"plugin-a", "10", "50", "50", "1024"},
		"12": {"plugin-b", "10", "1", "2", "1024"},
		"13": {"loadtest", "1", "10", "0", "512"},
	})
	ps := processes{vault: 10, plugins: []int{11, 12}, loadgen: 13, sim: 0}
	got := p.cpuOf(ps)
	want := processCPU{vault: 3 * time.Second, plugins: []time.Duration{time.Second, 30 * time.Millisecond},
		loadgen: 100 * time.Millisecond}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cpuOf = %+v, want %+v (sim pid 0 counts nothing)", got, want)
	}
	if total := got.total(); total != 4130*time.Millisecond {
		t.Errorf("total = %v, want 4.13s", total)
	}
	later := processCPU{vault: 4 * time.Second, plugins: []time.Duration{3 * time.Second, 30 * time.Millisecond},
		loadgen: time.Second, sim: time.Second}
	d := later.since(got)
	wantD := processCPU{vault: time.Second, plugins: []time.Duration{2 * time.Second, 0},
		loadgen: 900 * time.Millisecond, sim: time.Second}
	if !reflect.DeepEqual(d, wantD) {
		t.Errorf("since = %+v, want %+v", d, wantD)
	}
	var sum processCPU
	sum.add(d)
	sum.add(d)
	if !reflect.DeepEqual(sum, processCPU{vault: 2 * time.Second, plugins: []time.Duration{4 * time.Second, 0},
		loadgen: 1800 * time.Millisecond, sim: 2 * time.Second}) {
		t.Errorf("add twice = %+v", sum)
	}
	if r := p.rss(10); r != 2048 {
		t.Errorf("rss(10) = %d, want 2048", r)
	}
	if r := p.rss(99); r != -1 {
		t.Errorf("rss of a missing process = %d, want -1", r)
	}
	if got := p.loadavg(); got != "0.50 0.40 0.30" {
		t.Errorf("loadavg = %q", got)
	}
	if got := p.machineCPU(); got == nil || got.busy != 200 {
		t.Errorf("machineCPU = %+v, want busy 200", got)
	}
}
