package pprofserve

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPprofServesNothingUnlessAsked(t *testing.T) {
	ln, err := Serve("")
	if ln != nil || err != nil {
		t.Fatalf(`Serve("") = %v, %v; want nothing served`, ln, err)
	}
}

func TestPprofRefusesNonLoopbackAddresses(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "localhost:0", "10.0.0.1:6060", "127.0.0.1"} {
		if ln, err := Serve(addr); err == nil || !strings.Contains(err.Error(), Env) {
			if ln != nil {
				ln.Close()
			}
			t.Errorf("Serve(%q) = %v; want an error naming %s", addr, err, Env)
		}
	}
}

func TestPprofServesProfilesOnLoopback(t *testing.T) {
	ln, err := Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+ln.Addr().String()+"/debug/pprof/allocs?debug=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Errorf("GET allocs: HTTP %d, %.80q", resp.StatusCode, body)
	}
}
