// Command reliability renders docs/reliability.md from the outcome records
// the reliability suites write (one JSON object a line) when
// RELIABILITY_REPORT names a file. `make reliability` runs the suites and
// then this program.
//
//	go run ./scripts/reliability -in bin/reliability.jsonl -out docs/reliability.md
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"
)

type record struct {
	Suite     string `json:"suite"`
	Case      string `json:"case"`
	Operation string `json:"operation"`
	Fault     string `json:"fault"`
	Caller    string `json:"caller"`
	Token     string `json:"token"`
	Resumed   string `json:"resumed"`
	Result    string `json:"result"`
	Note      string `json:"note,omitempty"`
}

// Suites in the order the document shows them, with what the "fault"
// column means for each.
// suite is one test suite's section of the page.
type suite struct {
	name, faultHeading, intro string
}

var suites = []suite{
	{"fault matrix", "Fault",
		"`TestFaultMatrix` (backend/fault_matrix_test.go): one fresh mount per case against the in-process simulator, " +
			"one fault, one engine operation. Checked each time: what the caller gets; that the stored refresh token is " +
			"intact, replaced by Concur's newer one, or kept in memory and written first once storage recovers; that " +
			"service resumes once the fault clears (the operation succeeds again without a warning and status returns " +
			"to ok); that Concur never answered invalid_grant. Where the refresh token is lost, Concur alone made it so " +
			"(a strict rotation whose answer never arrived; a token left to expire), and the engine says so and stops calling."},
	{"soak", "Schedule",
		"`TestSoak` (backend/soak_test.go): simulated months on the controllable clock with strict rotation, random faults " +
			"from a fixed seed and daily bursts of concurrent readers. CI runs 2 months as part of `make unit`; `make soak` " +
			"runs 12. The numbers below are those of the run that produced this document."},
	{"hostile input", "Input",
		"`TestHostileInput` (backend/hostile_test.go): caller input that could send a credential elsewhere, reach another " +
			"Concur path, widen a filter or exhaust memory is refused with a 400 naming the field before anything is sent; " +
			"hosts named by Concur itself (geolocation, code 16, HTTP redirects) are never contacted unless allowed_hosts " +
			"allows them. (Further cases live in TestConfigBadInputNamesTheField and TestProfileBadInputNamesTheField.)"},
}

func main() {
	in := flag.String("in", "bin/reliability.jsonl", "outcome records (JSON lines)")
	out := flag.String("out", "docs/reliability.md", "document to write")
	flag.Parse()
	recs, err := read(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
	if len(recs) == 0 {
		fmt.Fprintln(os.Stderr, "reliability: no records in", *in)
		os.Exit(1)
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
	render(f, recs, time.Now().UTC())
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
}

// read loads the records; a case recorded twice keeps its last record.
func read(path string) (map[string][]record, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the -in flag names the file to read; that is its job
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bySuite := map[string]map[string]record{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if bySuite[r.Suite] == nil {
			bySuite[r.Suite] = map[string]record{}
		}
		bySuite[r.Suite][r.Case] = r
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := map[string][]record{}
	for s, m := range bySuite {
		for _, r := range m {
			out[s] = append(out[s], r)
		}
		sort.Slice(out[s], func(i, j int) bool { return out[s][i].Case < out[s][j].Case })
	}
	return out, nil
}

// correlationID is dropped from notes: it changes on every run.
var correlationID = regexp.MustCompile(`\s*\[correlation id [^\]]*\]`)

func clean(s string) string {
	return strings.Join(strings.Fields(correlationID.ReplaceAllString(s, "")), " ")
}

func cell(s string) string {
	s = clean(s)
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

// printer writes formatted text to the page.
type printer func(format string, args ...any)

func render(w io.Writer, recs map[string][]record, now time.Time) {
	p := printer(func(format string, args ...any) { fmt.Fprintf(w, format, args...) })
	renderHeader(p, recs, now)
	renderSummary(p, recs)
	var open []record
	for _, s := range suites {
		open = append(open, renderSuite(p, s, recs[s.name])...)
	}
	renderOpen(p, open)
}

// tally counts results: anything but pass or skip is a failure.
func tally(rs []record) (passed, failed, skipped int) {
	for _, r := range rs {
		switch r.Result {
		case "pass":
			passed++
		case "skip":
			skipped++
		default:
			failed++
		}
	}
	return passed, failed, skipped
}

// totals tallies every suite together.
func totals(recs map[string][]record) (total, passed, failed, skipped int) {
	for _, s := range suites {
		ps, fs, ss := tally(recs[s.name])
		total, passed, failed, skipped = total+len(recs[s.name]), passed+ps, failed+fs, skipped+ss
	}
	return total, passed, failed, skipped
}

// renderHeader: title, the machine-readable counts, and how the page was made.
func renderHeader(p printer, recs map[string][]record, now time.Time) {
	counts := []string{}
	for _, s := range suites {
		counts = append(counts, fmt.Sprintf("%s=%d", strings.ReplaceAll(s.name, " ", "_"), len(recs[s.name])))
	}
	total, passed, failed, skipped := totals(recs)
	p("# Reliability: cases tried and what held\n\n")
	p("<!-- Generated by `make reliability`; do not edit. -->\n")
	p("<!-- counts: %s total=%d passed=%d failed=%d skipped=%d -->\n\n", strings.Join(counts, " "), total, passed, failed, skipped)
	p("Generated %s by `make reliability`, which runs\n\n", now.Format("2006-01-02 15:04 MST"))
	months := os.Getenv("SOAK_MONTHS")
	if months == "" {
		months = "2"
	}
	p("    RELIABILITY_REPORT=bin/reliability.jsonl SOAK_MONTHS=%s \\\n", months)
	p("      go test -race -count=1 -run '^(TestFaultMatrix|TestHostileInput|TestSoak)$' ./backend/\n")
	p("    go run ./scripts/reliability -in bin/reliability.jsonl -out docs/reliability.md\n\n")
	p("(%s, %s/%s). Every case writes one record when it ends; this page is those records, nothing else. ",
		runtime.Version(), runtime.GOOS, runtime.GOARCH)
	p("`TestReliabilityDocMatchesSuites` (part of `make unit`) fails when the case lists or counts below no longer match the suites.\n\n")
}

// renderSummary: one row per suite and one for all.
func renderSummary(p printer, recs map[string][]record) {
	p("| Suite | Cases | Passed | Failed | Skipped (product bug awaiting a fix) |\n|---|---|---|---|---|\n")
	for _, s := range suites {
		ps, fs, ss := tally(recs[s.name])
		p("| %s | %d | %d | %d | %d |\n", s.name, len(recs[s.name]), ps, fs, ss)
	}
	total, passed, failed, skipped := totals(recs)
	p("| **all** | %d | %d | %d | %d |\n\n", total, passed, failed, skipped)
}

// renderSuite: the suite's table and notes; it returns the cases that did not pass.
func renderSuite(p printer, s suite, recs []record) (open []record) {
	p("## %s\n\n%s\n\n", s.name, s.intro)
	p("| # | Case | Operation | %s | Caller got | Refresh token | Resumed | Result |\n", s.faultHeading)
	p("|--:|---|---|---|---|---|---|---|\n")
	var notes []record
	for i, r := range recs {
		p("| %d | %s | %s | %s | %s | %s | %s | %s |\n", i+1, cell(r.Case), cell(r.Operation), cell(r.Fault),
			cell(r.Caller), cell(r.Token), cell(r.Resumed), cell(r.Result))
		if r.Note != "" {
			notes = append(notes, r)
		}
		if r.Result != "pass" {
			open = append(open, r)
		}
	}
	if len(notes) > 0 {
		p("\nNotes:\n\n")
		for _, r := range notes {
			p("- `%s`: %s\n", r.Case, clean(r.Note))
		}
	}
	p("\n")
	return open
}

// renderOpen lists the cases that did not pass.
func renderOpen(p printer, open []record) {
	p("## Open\n\n")
	if len(open) == 0 {
		p("Nothing: every case passed.\n")
		return
	}
	p("Cases that did not pass. A skipped case is a real test of the wanted behaviour, " +
		"marked with the product bug it found until the fix lands.\n\n")
	for _, r := range open {
		note, _, _ := strings.Cut(clean(r.Note), " (observed:")
		p("- %s `%s` (%s): %s\n", r.Suite, r.Case, r.Result, note)
	}
}
