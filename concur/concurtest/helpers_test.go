package concurtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	testClient  = "0f8fad5b-d9cb-469f-a165-70867728950e"
	testSecret  = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	testCompany = "aa076ada-80a9-4f57-8e98-9300b1c3171d"
)

var testEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newSim starts a simulator with one client and one company and closes it
// when the test ends.
func newSim(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = NewClock(testEpoch)
	}
	s := NewServer(opts)
	t.Cleanup(s.Close)
	s.AddClient(testClient, testSecret)
	s.AddCompany(testCompany, "")
	return s
}

type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r reply) code() int {
	n, _ := r.body["code"].(float64)
	return int(n)
}

func do(t *testing.T, c *http.Client, req *http.Request) reply {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &r.body)
	}
	return r
}

func postForm(t *testing.T, s *Server, base string, form url.Values) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/oauth2/v0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, s.Client(), req)
}

func passwordForm(company, requestToken string) url.Values {
	return url.Values{"client_id": {testClient}, "client_secret": {testSecret}, "grant_type": {"password"},
		"credtype": {"authtoken"}, "username": {company}, "password": {requestToken}}
}

func refreshForm(refresh string) url.Values {
	return url.Values{"client_id": {testClient}, "client_secret": {testSecret}, "grant_type": {"refresh_token"},
		"refresh_token": {refresh}}
}

// grant runs a password grant for the test company and fails the test unless it succeeds.
func grant(t *testing.T, s *Server) reply {
	t.Helper()
	r := postForm(t, s, s.URL, passwordForm(testCompany, s.NewRequestToken(testClient, testCompany)))
	if r.status != http.StatusOK {
		t.Fatalf("password grant: %d %s", r.status, r.raw)
	}
	return r
}

func refresh(t *testing.T, s *Server, token string) reply {
	t.Helper()
	return postForm(t, s, s.URL, refreshForm(token))
}

func get(t *testing.T, s *Server, path, bearer string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Accept", "application/json")
	return do(t, s.Client(), req)
}

// accessToken returns a fresh bearer token for the test company.
func accessTokenFor(t *testing.T, s *Server) string {
	t.Helper()
	return grant(t, s).body["access_token"].(string)
}

func wantOAuthError(t *testing.T, r reply, status int, errName string, code int) {
	t.Helper()
	if r.status != status || r.body["error"] != errName || r.code() != code {
		t.Fatalf("got %d %s, want %d error=%s code=%d", r.status, r.raw, status, errName, code)
	}
	if _, ok := r.body["error_description"].(string); !ok {
		t.Fatalf("no error_description in %s", r.raw)
	}
	if r.header.Get("Concur-Correlationid") == "" {
		t.Fatalf("no concur-correlationid header")
	}
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}
