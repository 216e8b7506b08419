package main

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// The committed results (testdata is a copy of docs/performance/performance-results.*,
// written by one real run) pin the output format that scripts/bench.sh and
// docs/performance.md rely on: the text report of the JSON must be the text
// that run printed, and the JSON must survive a round trip byte for byte.
func readGolden(t *testing.T) (*results, []byte, string) {
	t.Helper()
	js, err := os.ReadFile("testdata/performance-results.json")
	if err != nil {
		t.Fatal(err)
	}
	txt, err := os.ReadFile("testdata/performance-results.txt")
	if err != nil {
		t.Fatal(err)
	}
	var r results
	if err := json.Unmarshal(js, &r); err != nil {
		t.Fatal(err)
	}
	return &r, js, string(txt)
}

func TestReportTextMatchesCommittedRun(t *testing.T) {
	r, _, want := readGolden(t)
	if got := report(r); got != want {
		t.Errorf("text report differs from testdata/performance-results.txt\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestReportJSONRoundTrips(t *testing.T) {
	r, want, _ := readGolden(t)
	got, err := marshalResults(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("JSON differs from testdata/performance-results.json\ngot:\n%s", got)
	}
}
