package backend

// Shared machinery of the reliability suites (fault_matrix_test.go,
// soak_test.go, hostile_test.go): the outcome record each case writes for
// docs/reliability.md, a programmable "front door" HTTP server that can stand
// in front of the simulator (wrong content types, slow bodies, code-16 loops,
// HTTP redirects), an "elsewhere" server that must never be contacted, and
// storage that can fail reads.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Suite names as they appear in the report.
const (
	suiteMatrix  = "fault matrix"
	suiteSoak    = "soak"
	suiteHostile = "hostile input"
)

// reliabilityRecord is one line of the report: what was tried and what held.
type reliabilityRecord struct {
	Suite     string `json:"suite"`
	Case      string `json:"case"`
	Operation string `json:"operation"`
	Fault     string `json:"fault"`
	Caller    string `json:"caller"`  // what the caller got
	Token     string `json:"token"`   // what became of the stored refresh token
	Resumed   string `json:"resumed"` // whether service came back once the fault cleared
	Result    string `json:"result"`  // pass, fail or skip
	Note      string `json:"note,omitempty"`
}

var reportMu sync.Mutex

// recordCase starts the record of one case; when the test ends it is
// appended, with its result, to the file named by RELIABILITY_REPORT (one
// JSON object a line). Without the variable nothing is written.
func recordCase(t testing.TB, suite, name, op, fault string) *reliabilityRecord {
	t.Helper()
	r := &reliabilityRecord{Suite: suite, Case: name, Operation: op, Fault: fault}
	t.Cleanup(func() {
		switch {
		case t.Skipped():
			r.Result = "skip"
		case t.Failed():
			r.Result = "fail"
		default:
			r.Result = "pass"
		}
		path := os.Getenv("RELIABILITY_REPORT")
		if path == "" {
			return
		}
		line, err := json.Marshal(r)
		if err != nil {
			t.Errorf("report: %v", err)
			return
		}
		reportMu.Lock()
		defer reportMu.Unlock()
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644) //nolint:gosec // a report for docs/, readable by all
		if err != nil {
			t.Errorf("report: %v", err)
			return
		}
		defer f.Close()
		if _, err := f.Write(append(line, '\n')); err != nil {
			t.Errorf("report: %v", err)
		}
	})
	return r
}

// shortText keeps report notes readable.
func shortText(s string) string {
	if len(s) > 240 {
		return s[:240] + "..."
	}
	return s
}

// outcome is what a caller got from one engine operation.
type outcome struct {
	code     int // HTTP status as Vault would answer: 200, 204, 400, 429, 500, 502, ...
	msg      string
	warnings []string
	data     map[string]any
}

func (o outcome) String() string {
	s := fmt.Sprint(o.code)
	if len(o.warnings) > 0 {
		s += " + warning"
	}
	return s
}

// text is everything the caller was told.
func (o outcome) text() string { return o.msg + " " + strings.Join(o.warnings, " ") }

// outcomeOf turns a backend answer into the status Vault would send.
func outcomeOf(resp *logical.Response, err error) outcome {
	switch {
	case err != nil:
		c := codeOf(err)
		if c == 0 {
			if errors.Is(err, logical.ErrReadOnly) {
				c = 503
			} else {
				c = 500
			}
		}
		return outcome{code: c, msg: err.Error()}
	case resp == nil:
		return outcome{code: 204}
	case resp.IsError():
		return outcome{code: 400, msg: resp.Error().Error(), warnings: resp.Warnings}
	}
	return outcome{code: 200, warnings: resp.Warnings, data: resp.Data}
}

// storedToken reads the engine's entry straight from storage (never
// through the failing wrappers).
func (e *testEnv) storedToken() tokenEntry {
	var st companyEntry
	if _, err := getJSON(context.Background(), e.storage.Storage, defaultCompanyKey, &st); err != nil {
		// In-memory storage does not fail; a decode error is a bug in the engine.
		panic(fmt.Sprintf("reading storage: %v", err))
	}
	return st.Token
}

// memory returns the refresh token the engine holds in memory and whether
// it is unsaved.
func (e *testEnv) memory() (refreshToken string, unsaved bool) {
	v := e.b.view(defaultCompanyName)
	if v.entry != nil {
		refreshToken = v.entry.Token.RefreshToken
	}
	return refreshToken, v.unsaved
}

func (e *testEnv) currentRefreshToken() string {
	return e.sim.CurrentRefreshToken(testClientID, testCompany)
}

// readFailStorage fails the next n reads, as a storage backend that is
// briefly unreachable does. Writes go to the faultyStorage underneath.
type readFailStorage struct {
	*faultyStorage
	failGets atomic.Int32
}

func (s *readFailStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if s.failGets.Add(-1) >= 0 {
		return nil, errors.New("storage read unavailable")
	}
	s.failGets.Store(0)
	return s.faultyStorage.Get(ctx, key)
}

// deadlineTransport bounds each attempt (headers and body) by a deadline
// that tests switch on while a fault is injected and off again, so that
// setup and recovery never race a short timeout on a loaded machine.
type deadlineTransport struct {
	base    http.RoundTripper
	timeout atomic.Int64 // time.Duration; 0 = none
}

func (t *deadlineTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	d := time.Duration(t.timeout.Load())
	if d == 0 {
		return t.base.RoundTrip(r)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	resp, err := t.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// frontDoor is an HTTP server that passes requests on to the simulator
// unless an action is queued for them. Actions model what the simulator's
// own faults cannot: wrong content types, slow bodies, code-16 answers
// naming any host, HTTP redirects. Tokens responses name the front door as
// geolocation when the simulator is built with Options.Geolocation =
// door.URL, so the engine keeps talking through it.
type frontDoor struct {
	srv    *httptest.Server
	URL    string
	target atomic.Pointer[url.URL]
	proxy  *httputil.ReverseProxy

	mu      sync.Mutex
	actions []*doorAction
	queries []string // raw query strings of Identity requests seen
	hits    atomic.Int64
}

type doorAction struct {
	path string // path prefix the action applies to
	left int
	fn   func(d *frontDoor, w http.ResponseWriter, r *http.Request)
}

func newFrontDoor(t testing.TB) *frontDoor {
	d := &frontDoor{}
	d.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(d.target.Load())
		},
		ErrorLog: nil,
	}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	d.URL = d.srv.URL
	t.Cleanup(d.srv.Close)
	return d
}

func (d *frontDoor) setTarget(raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	d.target.Store(u)
}

// next queues fn for the next n requests whose path starts with path.
func (d *frontDoor) next(path string, n int, fn func(d *frontDoor, w http.ResponseWriter, r *http.Request)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.actions = append(d.actions, &doorAction{path: path, left: n, fn: fn})
}

func (d *frontDoor) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.actions = nil
}

func (d *frontDoor) seenQueries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.queries...)
}

func (d *frontDoor) serve(w http.ResponseWriter, r *http.Request) {
	d.hits.Add(1)
	d.mu.Lock()
	if strings.HasPrefix(r.URL.Path, "/profile/") {
		d.queries = append(d.queries, r.URL.RawQuery)
	}
	var act *doorAction
	for i, a := range d.actions {
		if strings.HasPrefix(r.URL.Path, a.path) {
			act = a
			if a.left--; a.left <= 0 {
				d.actions = append(d.actions[:i:i], d.actions[i+1:]...)
			}
			break
		}
	}
	d.mu.Unlock()
	if act != nil {
		act.fn(d, w, r)
		return
	}
	d.proxy.ServeHTTP(w, r)
}

// forward sends r to the simulator and returns the whole answer.
func (d *frontDoor) forward(r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	d.proxy.ServeHTTP(rec, r)
	return rec
}

// Door actions.

// answer replies with a fixed status, content type and body without asking Concur.
func answer(status int, contentType, body string) func(*frontDoor, http.ResponseWriter, *http.Request) {
	return func(_ *frontDoor, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// relabel passes the request on and rewrites the answer's Content-Type.
func relabel(contentType string) func(*frontDoor, http.ResponseWriter, *http.Request) {
	return func(d *frontDoor, w http.ResponseWriter, r *http.Request) {
		rec := d.forward(r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}
}

// slowBody passes the request on (Concur acts on it), sends the headers and
// a few bytes of the answer, then stalls until the client gives up.
func slowBody(stall time.Duration) func(*frontDoor, http.ResponseWriter, *http.Request) {
	return func(d *frontDoor, w http.ResponseWriter, r *http.Request) {
		rec := d.forward(r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		body := rec.Body.Bytes()
		_, _ = w.Write(body[:min(8, len(body))])
		http.NewResponseController(w).Flush()
		select {
		case <-time.After(stall):
			_, _ = w.Write(body[min(8, len(body)):])
		case <-r.Context().Done():
		}
	}
}

// code16 answers like Concur's wrong-data-centre error, naming geo.
func code16(geo string) func(*frontDoor, http.ResponseWriter, *http.Request) {
	body, _ := json.Marshal(map[string]any{
		"error": "invalid_request", "error_description": "user lives elsewhere", "code": 16, "geolocation": geo,
	})
	return answer(http.StatusBadRequest, "application/json", string(body))
}

// redirect answers an HTTP redirect to location.
func redirect(status int, location string) func(*frontDoor, http.ResponseWriter, *http.Request) {
	return func(_ *frontDoor, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", location)
		w.WriteHeader(status)
	}
}

// elsewhere is a server no request may ever reach: it counts what arrives.
type elsewhere struct {
	srv  *httptest.Server
	hits atomic.Int64
	// URL names it by a host the allow-list used in tests (127.0.0.1) does
	// not cover: localhost.
	URL string
}

func newElsewhere(t testing.TB) *elsewhere {
	e := &elsewhere{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"stolen","expires_in":3600}`)
	}))
	t.Cleanup(e.srv.Close)
	e.URL = strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)
	return e
}

// reportCounts reads the counts line of docs/reliability.md.
var countsLine = regexp.MustCompile(`<!-- counts: (.*) -->`)

func readReliabilityDoc(t *testing.T) (counts map[string]string, rows map[string][]string) {
	t.Helper()
	f, err := os.Open("../docs/reliability.md")
	if err != nil {
		t.Fatalf("docs/reliability.md: %v (run make reliability)", err)
	}
	defer f.Close()
	counts, rows = map[string]string{}, map[string][]string{}
	suite := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := countsLine.FindStringSubmatch(line); m != nil {
			for _, kv := range strings.Fields(m[1]) {
				k, v, _ := strings.Cut(kv, "=")
				counts[k] = v
			}
		}
		if s, ok := strings.CutPrefix(line, "## "); ok {
			suite = strings.ToLower(strings.TrimSpace(s))
		}
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| #") && !strings.HasPrefix(line, "|--") {
			cells := strings.Split(line, "|")
			if len(cells) > 2 {
				rows[suite] = append(rows[suite], strings.TrimSpace(strings.ReplaceAll(cells[2], `\|`, "|")))
			}
		}
	}
	return counts, rows
}

// The report is generated from a run of the suites (make reliability): its
// case lists and counts must match the suites as they are now.
func TestReliabilityDocMatchesSuites(t *testing.T) {
	counts, rows := readReliabilityDoc(t)
	for suite, names := range map[string][]string{
		suiteMatrix:  caseNames(faultMatrixCases()),
		suiteHostile: hostileCaseNames(),
		suiteSoak:    {soakCaseName},
	} {
		key := strings.ReplaceAll(suite, " ", "_")
		if counts[key] != fmt.Sprint(len(names)) {
			t.Errorf("docs/reliability.md counts %s=%s, the suite has %d cases: run make reliability", key, counts[key], len(names))
		}
		got := rows[suite]
		if len(got) != len(names) {
			t.Errorf("docs/reliability.md lists %d %s cases, the suite has %d: run make reliability", len(got), suite, len(names))
			continue
		}
		want := map[string]bool{}
		for _, n := range names {
			want[n] = true
		}
		for _, n := range got {
			if !want[n] {
				t.Errorf("docs/reliability.md lists %s case %q, which the suite does not have: run make reliability", suite, n)
			}
		}
	}
	if counts["failed"] != "0" {
		t.Errorf("docs/reliability.md records %s failed cases", counts["failed"])
	}
}
