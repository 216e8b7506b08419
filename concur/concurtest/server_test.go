package concurtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConcurrentCounters(t *testing.T) {
	s := newSim(t, Options{})
	tok := s.NewRefreshToken(testClient, testCompany)
	access := accessTokenFor(t, s)
	s.ResetCounters()
	const workers, each = 16, 8
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if st := quietStatus(s, tokenRequest(s, refreshForm(tok))); st != 200 {
					t.Errorf("refresh: %d", st)
				}
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL+usersPath, nil)
				req.Header.Set("Authorization", "Bearer "+access)
				if st := quietStatus(s, req); st != 200 {
					t.Errorf("users: %d", st)
				}
				_ = s.Stats()
				_ = s.Calls(EndpointToken)
			}
		}()
	}
	wg.Wait()
	n := workers * each
	if s.Calls(EndpointToken) != n || s.GrantCalls("refresh_token") != n || s.RefreshTokenUses(tok) != n || s.Calls(EndpointUsers) != n {
		t.Errorf("counters: %+v uses=%d", s.Stats(), s.RefreshTokenUses(tok))
	}
	st := s.Stats()
	if st.Calls["token"] != n || st.Grants["refresh_token"] != n {
		t.Errorf("Stats = %+v", st)
	}
	s.ResetCounters()
	if s.Calls(EndpointToken) != 0 || s.RefreshTokenUses(tok) != 0 {
		t.Error("ResetCounters did not reset")
	}
}

// With strict rotation, of many concurrent refreshes with one token exactly
// one wins; the rest get 108 (what an unserialised client would suffer).
func TestConcurrentRotateOneWinner(t *testing.T) {
	s := newSim(t, Options{Rotation: RotationRotate})
	tok := s.NewRefreshToken(testClient, testCompany)
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if quietStatus(s, tokenRequest(s, refreshForm(tok))) == 200 {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 || s.ErrorCount(CodeBadRefreshToken) != n-1 {
		t.Errorf("winners=%d 108s=%d", ok, s.ErrorCount(CodeBadRefreshToken))
	}
}

// quietStatus is for goroutines, which must not call t.Fatal: it returns
// the status, or -1 when the request failed.
func quietStatus(s *Server, req *http.Request) int {
	resp, err := s.Client().Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func tokenRequest(s *Server, form url.Values) *http.Request {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+"/oauth2/v0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestLogNeverShowsSecrets(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	s := newSim(t, Options{Logf: func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(format, args...))
	}})
	rt := s.NewRequestToken(testClient, testCompany)
	r := postForm(t, s, s.URL, passwordForm(testCompany, rt))
	access, refreshTok, idTok := r.body["access_token"].(string), r.body["refresh_token"].(string), r.body["id_token"].(string)
	refresh(t, s, refreshTok)
	refresh(t, s, "bogus-refresh-value")
	get(t, s, usersPath, access)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultStatus, Status: 503})
	refresh(t, s, refreshTok)

	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 5 {
		t.Fatalf("want one line per request, got %d: %q", len(lines), lines)
	}
	all := strings.Join(lines, "\n")
	for _, secret := range []string{testSecret, rt, access, refreshTok, idTok, "bogus-refresh-value", "client_secret"} {
		if strings.Contains(all, secret) {
			t.Errorf("log contains a secret %q:\n%s", secret, all)
		}
	}
	want := "POST /oauth2/v0/token status=200 grant_type=password correlation_id=" + r.header.Get("Concur-Correlationid")
	if !strings.Contains(lines[0], want) {
		t.Errorf("line 0 = %q", lines[0])
	}
	if !strings.Contains(lines[2], "status=400") || !strings.Contains(lines[3], "GET "+usersPath+" status=200") ||
		!strings.Contains(lines[4], "status=503 fault=status grant_type=refresh_token") {
		t.Errorf("lines = %q", lines)
	}
}

func TestTLS(t *testing.T) {
	s := newSim(t, Options{TLS: true})
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Fatalf("URL = %s", s.URL)
	}
	grant(t, s) // through Server.Client(), which trusts the certificate
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL+"/oauth2/v0/token", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("an untrusting client should fail the handshake")
	}
}

func TestNewServerOnAndDataCenters(t *testing.T) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServerOn(l, Options{Clock: NewClock(testEpoch), DataCenters: []string{"glz", "us2", "eu2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.URL != "http://"+l.Addr().String() || s.URLOf("glz") != s.URL {
		t.Fatalf("URL %s, listener %s", s.URL, l.Addr())
	}
	if got := s.DataCenters(); strings.Join(got, ",") != "glz,us2,eu2" {
		t.Fatalf("DataCenters = %v", got)
	}
	if s.URLOf("us2") == s.URLOf("eu2") || s.HandlerFor("eu2") == nil || s.HandlerFor("x") != nil || s.Handler() == nil {
		t.Fatal("data centres should be distinct")
	}
	s.AddClient(testClient, testSecret)
	s.AddCompany(testCompany, "us2")
	// Reference 4.2: the company-token grant goes to GLZ, which answers with
	// the company's geolocation; another data centre redirects (code 16).
	r := postForm(t, s, s.URL, passwordForm(testCompany, s.NewRequestToken(testClient, testCompany)))
	if r.status != http.StatusOK || r.body["geolocation"] != s.URLOf("us2") {
		t.Fatalf("GLZ grant: %s", r.raw)
	}
	r = postForm(t, s, s.URLOf("eu2"), passwordForm(testCompany, s.NewRequestToken(testClient, testCompany)))
	if r.code() != CodeWrongDataCenter || r.body["geolocation"] != s.URLOf("us2") {
		t.Fatalf("eu2 redirect: %s", r.raw)
	}
	if _, err := NewServerOn(nil, Options{}); err == nil {
		t.Error("nil listener accepted")
	}
	if _, err := newServer(nil, Options{DataCenters: []string{"a", "a"}}); err == nil {
		t.Error("duplicate data centres accepted")
	}
}

func TestHandlerMounted(t *testing.T) {
	s := newSim(t, Options{})
	// Mount the handler behind a listener of the test's own.
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	r := postForm(t, s, "http://"+l.Addr().String(), passwordForm(testCompany, s.NewRequestToken(testClient, testCompany)))
	if r.status != 200 {
		t.Fatalf("mounted handler: %d %s", r.status, r.raw)
	}
}

func TestClock(t *testing.T) {
	c := NewClock(testEpoch)
	c.Advance(time.Hour)
	if !c.Now().Equal(testEpoch.Add(time.Hour)) {
		t.Fatal("Advance")
	}
	c.Set(testEpoch)
	if !c.Now().Equal(testEpoch) {
		t.Fatal("Set")
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.Advance(time.Second); _ = c.Now() }()
	}
	wg.Wait()
	if !c.Now().Equal(testEpoch.Add(8 * time.Second)) {
		t.Fatal("concurrent Advance lost updates")
	}
}
