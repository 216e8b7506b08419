package main

import (
	"io/fs"
	"strconv"
	"time"
)

// procfs reads /proc (os.DirFS("/proc"); tests give it an fstest.MapFS).
// Files that cannot be read count as empty: a process that went away has
// no CPU time and no RSS.
type procfs struct{ fsys fs.FS }

func (p procfs) read(name string) []byte {
	b, _ := fs.ReadFile(p.fsys, name)
	return b
}

func (p procfs) ofPID(pid int, name string) []byte {
	if pid <= 0 {
		return nil
	}
	return p.read(strconv.Itoa(pid) + "/" + name)
}

// cpuTime is the user+system CPU time pid used so far, or 0.
func (p procfs) cpuTime(pid int) time.Duration {
	d, err := statCPUTime(p.ofPID(pid, "stat"))
	if err != nil {
		return 0
	}
	return d
}

// rss is the VmRSS of pid in KiB, or -1.
func (p procfs) rss(pid int) int64 {
	return statusRSS(p.ofPID(pid, "status"))
}

// findProcess returns the pid of the newest process whose argv[0] has base
// name exactly name and, when parent is not 0, whose parent is parent; or 0.
func (p procfs) findProcess(name string, parent int) int {
	ents, _ := fs.ReadDir(p.fsys, ".")
	best := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= best || cmdlineName(p.ofPID(pid, "cmdline")) != name {
			continue
		}
		if parent == 0 || statusParent(p.ofPID(pid, "status")) == parent {
			best = pid
		}
	}
	return best
}

func (p procfs) loadavg() string       { return loadavg(p.read("loadavg")) }
func (p procfs) machineCPU() *cpuTimes { return machineCPU(p.read("stat")) }

// processes are the pids whose CPU time the load test accounts for.
type processes struct {
	vault   int
	plugins []int // in -plugins order
	loadgen int   // this program
	sim     int   // 0 when not given
}

// processCPU is CPU time per process of processes: used so far, or between
// two readings.
type processCPU struct {
	vault   time.Duration
	plugins []time.Duration
	loadgen time.Duration
	sim     time.Duration // counts as ours when judging other load; not reported per target
}

func (p procfs) cpuOf(ps processes) processCPU {
	c := processCPU{vault: p.cpuTime(ps.vault), loadgen: p.cpuTime(ps.loadgen), sim: p.cpuTime(ps.sim)}
	for _, pid := range ps.plugins {
		c.plugins = append(c.plugins, p.cpuTime(pid))
	}
	return c
}

// since is the CPU time used between earlier and c.
func (c processCPU) since(earlier processCPU) processCPU {
	d := processCPU{vault: c.vault - earlier.vault, loadgen: c.loadgen - earlier.loadgen, sim: c.sim - earlier.sim}
	for i := range c.plugins {
		d.plugins = append(d.plugins, c.plugins[i]-earlier.plugins[i])
	}
	return d
}

// add adds o to c, plugin by plugin.
func (c *processCPU) add(o processCPU) {
	c.vault += o.vault
	c.loadgen += o.loadgen
	c.sim += o.sim
	for i, d := range o.plugins {
		if i >= len(c.plugins) {
			c.plugins = append(c.plugins, 0)
		}
		c.plugins[i] += d
	}
}

// total is the CPU time of all the processes together.
func (c processCPU) total() time.Duration {
	t := c.vault + c.loadgen + c.sim
	for _, d := range c.plugins {
		t += d
	}
	return t
}
