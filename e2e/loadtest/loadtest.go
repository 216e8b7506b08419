package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// bench is one load test under way: what it talks to and the processes it watches.
type bench struct {
	o      *options
	client *client
	proc   procfs
	procs  processes
	log    io.Writer // progress lines
}

// loadTest runs the load test o describes: setup, warm-up, the measured
// phases, and the readings before and after. Progress goes to log.
func loadTest(ctx context.Context, o *options, log io.Writer) (*results, error) {
	b := &bench{o: o, client: newClient(o), proc: procfs{os.DirFS("/proc")}, log: log}
	res := &results{StartedAt: time.Now().UTC(), Conns: o.conns, DurationPerTgt: o.duration.String(),
		Phase: o.phase.String(), Warmup: o.warmup.String(), Note: o.note}
	res.Machine = describeMachine(ctx, b.client, b.proc)
	steal0 := b.proc.machineCPU()
	if err := b.prepareTargets(ctx); err != nil {
		return nil, err
	}
	if err := b.findProcesses(res); err != nil {
		return nil, err
	}
	if err := b.warmUp(ctx); err != nil {
		return nil, err
	}
	runtime.GC()
	statsBefore, err := b.client.simStats(ctx)
	if err != nil {
		return nil, err
	}
	b.recordRSS(res, func(r *rss, kib int64) { r.Before = kib })
	res.Machine.LoadBefore = b.proc.loadavg()

	all, quiet, err := b.measure(ctx, res)
	if err != nil {
		return nil, err
	}

	res.Machine.LoadAfter = b.proc.loadavg()
	if st := b.proc.machineCPU(); steal0 != nil && st != nil {
		res.Machine.StealPercent = st.stealSince(steal0)
	}
	b.recordRSS(res, func(r *rss, kib int64) { r.After, r.Growth = kib, kib-r.Before })
	if err := b.checkPluginsSame(); err != nil {
		return nil, err
	}
	statsAfter, err := b.client.simStats(ctx)
	if err != nil {
		return nil, err
	}
	res.TokenCallsRun = tokenCalls(statsAfter) - tokenCalls(statsBefore)
	res.TokenCallsTotal = tokenCalls(statsAfter)
	res.SimStatsAfter = statsAfter
	summarize(res, o.targets, o.pairs, all, quiet, b.responseSizes(ctx))
	return res, nil
}

// prepareTargets writes the KV secret shaped like the first target's
// response and reads every target once, so a broken one fails early.
func (b *bench) prepareTargets(ctx context.Context) error {
	first := b.o.targets[0].Path
	credsBody, err := b.client.get(ctx, first)
	if err != nil {
		return fmt.Errorf("first read of %s: %w", first, err)
	}
	if b.o.kvPath != "" {
		if err := b.client.writeLookalike(ctx, b.o.kvPath, credsBody); err != nil {
			return err
		}
	}
	for _, t := range b.o.targets {
		if _, err := b.client.get(ctx, t.Path); err != nil {
			return fmt.Errorf("first read of %s: %w", t.Path, err)
		}
	}
	return nil
}

// findProcesses finds Vault and its plugin processes and records their RSS at start.
func (b *bench) findProcesses(res *results) error {
	b.procs = processes{vault: b.o.vaultPID, loadgen: os.Getpid(), sim: b.o.simPID}
	if b.procs.vault == 0 {
		b.procs.vault = b.proc.findProcess("vault", 0)
	}
	for _, name := range b.o.pluginNames {
		pid := b.proc.findProcess(name, b.procs.vault)
		if pid == 0 {
			return fmt.Errorf("no process named %s (is the plugin running?)", name)
		}
		b.procs.plugins = append(b.procs.plugins, pid)
		res.Plugins = append(res.Plugins, rss{Name: name, PID: pid})
	}
	res.VaultRSS = rss{Name: "vault", PID: b.procs.vault}
	b.recordRSS(res, func(r *rss, kib int64) { r.Start = kib })
	return nil
}

// recordRSS calls set with the current RSS of each plugin and of Vault.
func (b *bench) recordRSS(res *results, set func(r *rss, kib int64)) {
	for i := range res.Plugins {
		set(&res.Plugins[i], b.proc.rss(res.Plugins[i].PID))
	}
	set(&res.VaultRSS, b.proc.rss(res.VaultRSS.PID))
}

// checkPluginsSame fails the run when a plugin process was replaced: its
// figures would mix two processes.
func (b *bench) checkPluginsSame() error {
	for i, name := range b.o.pluginNames {
		if p := b.proc.findProcess(name, b.procs.vault); p != b.procs.plugins[i] {
			return fmt.Errorf("plugin %s restarted during the run (pid %d, now %d)", name, b.procs.plugins[i], p)
		}
	}
	return nil
}

// warmUp loads every target, unmeasured.
func (b *bench) warmUp(ctx context.Context) error {
	for _, t := range b.o.targets {
		fmt.Fprintf(b.log, "warm-up %s %s\n", t.Name, b.o.warmup)
		req, err := b.client.vaultRequest(ctx, t.Path)
		if err != nil {
			return err
		}
		if _, err := load(ctx, b.client.hc, req, b.o.conns, b.o.warmup); err != nil {
			return err
		}
	}
	return nil
}

// responseSizes reads every target once more for the size of its body (0 when the read fails).
func (b *bench) responseSizes(ctx context.Context) []int {
	var sizes []int
	for _, t := range b.o.targets {
		body, _ := b.client.get(ctx, t.Path)
		sizes = append(sizes, len(body))
	}
	return sizes
}

// describeMachine records what the figures were measured on.
func describeMachine(ctx context.Context, c *client, p procfs) machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: cpuModel(p.read("cpuinfo"))}
	m.Hostname, _ = os.Hostname()
	if mib, err := memTotalMiB(p.read("meminfo")); err == nil {
		m.MemTotalMiB = mib
	}
	m.Kernel = strings.TrimSpace(string(p.read("sys/kernel/osrelease")))
	m.VaultVersion = c.vaultVersion(ctx)
	return m
}
