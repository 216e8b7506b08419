package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// writeReports prints the text report on stdout and writes it, and the
// JSON, to the files o names.
func writeReports(res *results, o *options, stdout io.Writer) error {
	text := report(res)
	if _, err := io.WriteString(stdout, text); err != nil {
		return err
	}
	if o.outText != "" {
		if err := os.WriteFile(o.outText, []byte(text), 0o644); err != nil { //nolint:gosec // G306: a report for docs/, readable by all
			return err
		}
	}
	if o.outJSON != "" {
		js, err := marshalResults(res)
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.outJSON, js, 0o644); err != nil { //nolint:gosec // G306: a report for docs/, readable by all
			return err
		}
	}
	return nil
}

// marshalResults is the JSON file's content.
func marshalResults(res *results) ([]byte, error) {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// report is the human-readable report: the setting, one table per view of
// the targets, then the verdicts.
func report(r *results) string {
	var sb strings.Builder
	reportSetting(&sb, r)
	reportTargets(&sb, r)
	reportCPU(&sb, r)
	reportPhases(&sb, r)
	reportVerdicts(&sb, r)
	return sb.String()
}

func reportSetting(w io.Writer, r *results) {
	mc := r.Machine
	fmt.Fprintf(w, "vault-plugin-secrets-concur load test, %s\n", r.StartedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %d CPUs (%s), %d MiB RAM, Linux %s, %s, Vault %s\n",
		mc.CPUs, mc.CPUModel, mc.MemTotalMiB, mc.Kernel, mc.GoVersion, mc.VaultVersion)
	fmt.Fprintf(w, "load average before/after the run: %s / %s; CPU steal during the run: %.1f%%\n",
		mc.LoadBefore, mc.LoadAfter, mc.StealPercent)
	fmt.Fprintf(w, "CPU used by other processes during the run: %.2f cores on average (0 = quiet machine)\n", r.OtherCPU)
	fmt.Fprintf(w, "%d closed-loop keep-alive connections; %s per target in alternating %s phases after %s warm-up each\n\n",
		r.Conns, r.DurationPerTgt, r.Phase, r.Warmup)
}

// writeTable writes rows of tab-terminated cells right-aligned under header.
func writeTable(w io.Writer, header string, rows []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, r)
	}
	_ = tw.Flush() // report writes to a strings.Builder, which does not fail
}

func reportTargets(w io.Writer, r *results) {
	var rows []string
	for _, t := range r.Targets {
		rows = append(rows, fmt.Sprintf("%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t", t.Name, t.Path, t.Requests,
			t.Errors, t.RPS, t.P50Micros, t.P90Micros, t.P99Micros, t.MaxMicros, t.ResponseSize))
	}
	writeTable(w, "target\tpath\trequests\terrors\treq/s\tp50 µs\tp90 µs\tp99 µs\tmax µs\tbody bytes\t", rows)
}

func reportCPU(w io.Writer, r *results) {
	fmt.Fprintf(w, "\nCPU time per request (µs) while each target ran:\n")
	header := "target\tvault\t"
	for _, p := range r.Plugins {
		header += p.Name + "\t"
	}
	var rows []string
	for _, t := range r.Targets {
		row := fmt.Sprintf("%s\t%.1f\t", t.Name, t.VaultCPUMicros)
		for _, c := range t.PluginCPUMicros {
			row += fmt.Sprintf("%.1f\t", c)
		}
		rows = append(rows, row+fmt.Sprintf("%.1f\t", t.LoadgenCPUMicros))
	}
	writeTable(w, header+"load generator\t", rows)
}

func reportPhases(w io.Writer, r *results) {
	fmt.Fprintf(w, "\nPhases (in run order):\n")
	var rows []string
	for i, p := range r.Phases {
		rows = append(rows, fmt.Sprintf("%d\t%s\t%.1f\t%.0f\t%.0f\t%.0f\t%.2f\t",
			i+1, p.Target, p.Seconds, p.RPS, p.P50Micros, p.P99Micros, p.OtherCPU))
	}
	writeTable(w, "#\ttarget\tseconds\treq/s\tp50 µs\tp99 µs\tother CPU (cores)\t", rows)
}

func reportVerdicts(w io.Writer, r *results) {
	fmt.Fprintln(w)
	for _, c := range r.Comparisons {
		reportComparison(w, c)
	}
	fmt.Fprintf(w, "Concur token calls during the run: %d (since the simulator started: %d)\n", r.TokenCallsRun, r.TokenCallsTotal)
	for _, p := range r.Plugins {
		fmt.Fprintf(w, "plugin %s (pid %d) RSS: %.1f MiB at start, %.1f MiB before the run, %.1f MiB after: "+
			"growth %+.1f MiB (target < 10)\n", p.Name, p.PID, mib(p.Start), mib(p.Before), mib(p.After), mib(p.Growth))
	}
	v := r.VaultRSS
	fmt.Fprintf(w, "vault (pid %d) RSS: %.1f MiB before the run, %.1f MiB after\n", v.PID, mib(v.Before), mib(v.After))
	if r.Note != "" {
		fmt.Fprintf(w, "note: %s\n", r.Note)
	}
}

// reportComparison is two lines: the ratios over the whole run with their
// spread over rounds, then over the quiet phases.
func reportComparison(w io.Writer, c comparison) {
	goal := ""
	if c.Goal > 0 {
		goal = fmt.Sprintf(" (goal ≥ %.2f)", c.Goal)
	}
	fmt.Fprintf(w, "%s/%s: throughput %.2f×%s, per round median %.2f× (%.2f–%.2f× over %d rounds); "+
		"p50 %.2f×, p99 %.2f×; CPU per request %s/%s %.2f\n", c.A, c.B, c.RatioRPS, goal,
		c.RoundMedian, c.RoundMin, c.RoundMax, len(c.Rounds), c.RatioP50, c.RatioP99, c.B, c.A, c.CPURatio)
	if q := c.Quiet; q != nil {
		fmt.Fprintf(w, "  over the quiet phases only (other CPU < %.2f cores; %.0f s and %.0f s): "+
			"throughput %.2f×, p50 %.2f×, p99 %.2f×\n", quietCores, q.SecondsA, q.SecondsB, q.RatioRPS, q.RatioP50, q.RatioP99)
	} else {
		fmt.Fprintf(w, "  no quiet phase for both (other CPU < %.2f cores): the ratios above include other load\n", quietCores)
	}
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
