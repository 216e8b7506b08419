package concurtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaultStatus(t *testing.T) {
	s := newSim(t, Options{})
	tok := s.NewRefreshToken(testClient, testCompany)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultStatus, Status: 429, RetryAfter: "0"})
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultStatus, Status: 503})
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultStatus, Status: 500, RetryAfter: "7"})
	if s.PendingFaults(EndpointToken) != 3 {
		t.Fatalf("PendingFaults = %d", s.PendingFaults(EndpointToken))
	}

	r := refresh(t, s, tok)
	if r.status != 429 || r.header.Get("Retry-After") != "0" || r.header.Get("Concur-Correlationid") == "" {
		t.Fatalf("429: %d %v", r.status, r.header)
	}
	errObj, _ := r.body["error"].(map[string]any)
	if r.body["httpStatus"] != "429 - Too Many Requests" || errObj["id"] != "security.rate.limit.reached" ||
		errObj["message"] != "Too many requests" || r.body["path"] != "/oauth2/v0/token" || r.body["timestamp"] == nil {
		t.Errorf("429 body: %s", r.raw)
	}
	r = refresh(t, s, tok)
	if _, has := r.header["Retry-After"]; r.status != 503 || has {
		t.Errorf("503 without Retry-After: %d %v", r.status, r.header)
	}
	r = refresh(t, s, tok)
	if r.status != 500 || r.header.Get("Retry-After") != "7" {
		t.Errorf("500: %d %v", r.status, r.header)
	}
	// Faults are used up; the token survived them untouched.
	if r := refresh(t, s, tok); r.status != 200 || r.body["refresh_token"] != tok {
		t.Fatalf("after faults: %d %s", r.status, r.raw)
	}
	if s.Calls(EndpointToken) != 4 || s.GrantCalls("refresh_token") != 4 || s.RefreshTokenUses(tok) != 4 {
		t.Errorf("counters: calls=%d grants=%d uses=%d", s.Calls(EndpointToken), s.GrantCalls("refresh_token"), s.RefreshTokenUses(tok))
	}
}

func TestFaultConsumesNoTokenState(t *testing.T) {
	s := newSim(t, Options{Rotation: RotationRotate, RequestTokenUses: 1})
	tok := s.NewRefreshToken(testClient, testCompany)
	exp := s.RefreshTokenExpiry(tok)
	s.Clock.Advance(time.Hour)
	for _, f := range []Fault{{Kind: FaultStatus, Status: 503}, {Kind: FaultMalformedJSON}, {Kind: FaultOversized, Size: 1024}} {
		s.InjectFault(EndpointToken, 1, f)
		refresh(t, s, tok)
	}
	if !s.RefreshTokenValid(tok) || s.CurrentRefreshToken(testClient, testCompany) != tok || !s.RefreshTokenExpiry(tok).Equal(exp) {
		t.Fatal("a faulted refresh changed the token")
	}
	// A faulted password grant does not use up a single-use request token.
	rt := s.NewRequestToken(testClient, testCompany)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultStatus, Status: 429})
	postForm(t, s, s.URL, passwordForm(testCompany, rt))
	if r := postForm(t, s, s.URL, passwordForm(testCompany, rt)); r.status != 200 {
		t.Fatalf("request token after fault: %d %s", r.status, r.raw)
	}
}

func TestFaultsArePerEndpoint(t *testing.T) {
	s := newSim(t, Options{})
	tok := accessTokenFor(t, s)
	s.InjectFault(EndpointUsers, 2, Fault{Kind: FaultStatus, Status: 503})
	if r := refresh(t, s, s.CurrentRefreshToken(testClient, testCompany)); r.status != 200 {
		t.Fatalf("token endpoint hit by a users fault: %d", r.status)
	}
	for i := 0; i < 2; i++ {
		if r := get(t, s, usersPath, tok); r.status != 503 {
			t.Fatalf("users fault %d: %d", i, r.status)
		}
	}
	if r := get(t, s, usersPath, tok); r.status != 200 {
		t.Fatalf("after users faults: %d", r.status)
	}
	s.InjectFault(EndpointUsers, 5, Fault{Kind: FaultStatus, Status: 503})
	s.ClearFaults()
	if r := get(t, s, usersPath, tok); r.status != 200 || s.PendingFaults(EndpointUsers) != 0 {
		t.Fatalf("after ClearFaults: %d", r.status)
	}
}

func TestFaultDelay(t *testing.T) {
	s := newSim(t, Options{})
	tok := s.NewRefreshToken(testClient, testCompany)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultDelay, Delay: 50 * time.Millisecond})
	start := time.Now()
	r := refresh(t, s, tok)
	if r.status != 200 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("delay: %d after %v", r.status, time.Since(start))
	}

	// A client that gives up early gets its error at its own deadline, and
	// the abandoned request changes nothing.
	s.SetRotation(RotationRotate)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultDelay, Delay: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/oauth2/v0/token", strings.NewReader(refreshForm(tok).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	start = time.Now()
	resp, err := s.Client().Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("delay did not honour the client giving up")
	}
	if !s.RefreshTokenValid(tok) {
		t.Fatal("abandoned delayed refresh rotated the token")
	}
}

func TestFaultMalformedAndOversized(t *testing.T) {
	s := newSim(t, Options{})
	tok := accessTokenFor(t, s)
	for _, ep := range []Endpoint{EndpointToken, EndpointUsers} {
		s.InjectFault(ep, 1, Fault{Kind: FaultMalformedJSON})
	}
	r := refresh(t, s, s.CurrentRefreshToken(testClient, testCompany))
	if r.status != 200 || json.Valid(r.raw) || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("malformed token body: %d %q", r.status, r.raw)
	}
	r = get(t, s, usersPath, tok)
	if r.status != 200 || json.Valid(r.raw) {
		t.Errorf("malformed users body: %d %q", r.status, r.raw)
	}

	s.InjectFault(EndpointUsers, 1, Fault{Kind: FaultOversized})
	r = get(t, s, usersPath, tok)
	if r.status != 200 || len(r.raw) < DefaultOversizedBytes || !json.Valid(r.raw) {
		t.Errorf("oversized: %d, %d bytes", r.status, len(r.raw))
	}
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultOversized, Size: 3 << 20})
	r = refresh(t, s, s.CurrentRefreshToken(testClient, testCompany))
	if len(r.raw) < 3<<20 || len(r.raw) > 3<<20+64 {
		t.Errorf("oversized with Size: %d bytes", len(r.raw))
	}
}

// freshClient never reuses connections, so Go's transport does not silently
// retry a request whose reused connection was dropped.
func freshClient(s *Server) *http.Client {
	tr := s.Client().Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	return &http.Client{Transport: tr}
}

func TestFaultDrop(t *testing.T) {
	for _, tls := range []bool{false, true} {
		s := newSim(t, Options{TLS: tls, Rotation: RotationRotate})
		tok := s.NewRefreshToken(testClient, testCompany)
		c := freshClient(s)
		s.InjectFault(EndpointToken, 1, Fault{Kind: FaultDrop})
		req, _ := http.NewRequestWithContext(
			context.Background(), http.MethodPost, s.URL+"/oauth2/v0/token", strings.NewReader(refreshForm(tok).Encode()),
		)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("tls=%v: dropped request got a response: %d", tls, resp.StatusCode)
		}
		if !s.RefreshTokenValid(tok) {
			t.Fatalf("tls=%v: drop rotated the token", tls)
		}
		req, _ = http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL+usersPath, nil)
		s.InjectFault(EndpointUsers, 1, Fault{Kind: FaultDrop})
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("tls=%v: dropped users request got a response", tls)
		}
		if s.Calls(EndpointUsers) != 1 || s.Calls(EndpointToken) != 1 {
			t.Errorf("counters: %v", s.Stats())
		}
	}
}

func TestFaultDropAfter(t *testing.T) {
	s := newSim(t, Options{Rotation: RotationRotate})
	tok := s.NewRefreshToken(testClient, testCompany)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultDropAfter})
	req, _ := http.NewRequestWithContext(
		context.Background(), http.MethodPost, s.URL+"/oauth2/v0/token", strings.NewReader(refreshForm(tok).Encode()),
	)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := freshClient(s).Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("drop-after got a response")
	}
	// Concur did the work: the token rotated and the client never saw the new one.
	cur := s.CurrentRefreshToken(testClient, testCompany)
	if cur == "" || cur == tok || s.RefreshTokenValid(tok) {
		t.Fatalf("drop-after should have rotated: current=%q oldValid=%v", cur, s.RefreshTokenValid(tok))
	}
	wantOAuthError(t, refresh(t, s, tok), 400, "invalid_grant", CodeBadRefreshToken)

	// In grace mode the same loss is survivable by retrying the old token.
	g := newSim(t, Options{Rotation: RotationGrace})
	tok = g.NewRefreshToken(testClient, testCompany)
	g.InjectFault(EndpointToken, 1, Fault{Kind: FaultDropAfter})
	req, _ = http.NewRequestWithContext(
		context.Background(), http.MethodPost, g.URL+"/oauth2/v0/token", strings.NewReader(refreshForm(tok).Encode()),
	)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := freshClient(g).Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("drop-after got a response")
	}
	if r := refresh(t, g, tok); r.status != 200 {
		t.Fatalf("grace retry: %d %s", r.status, r.raw)
	}
}

func TestCorrelationIDEverywhere(t *testing.T) {
	s := newSim(t, Options{})
	tok := accessTokenFor(t, s)
	var replies []reply
	replies = append(replies,
		grant(t, s),
		refresh(t, s, "nope"),
		get(t, s, usersPath, tok),
		get(t, s, usersPath+"/bad", tok),
		get(t, s, usersPath, ""),
		get(t, s, "/no/such/path", ""),
		get(t, s, "/_sim/stats", ""), // admin not enabled: plain 404
	)
	s.InjectFault(EndpointUsers, 1, Fault{Kind: FaultStatus, Status: 429})
	replies = append(replies, get(t, s, usersPath, tok))
	s.InjectFault(EndpointUsers, 1, Fault{Kind: FaultMalformedJSON})
	replies = append(replies, get(t, s, usersPath, tok))
	seen := map[string]bool{}
	for i, r := range replies {
		id := r.header.Get("Concur-Correlationid")
		if !isUUID(id) || seen[id] {
			t.Errorf("reply %d (%d): correlation id %q", i, r.status, id)
		}
		seen[id] = true
	}
	if replies[5].status != 404 || replies[6].status != 404 {
		t.Errorf("unknown paths: %d %d", replies[5].status, replies[6].status)
	}
	// A client-supplied id is echoed.
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL+usersPath, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("concur-correlationid", "my-trace-123")
	if r := do(t, s.Client(), req); r.header.Get("Concur-Correlationid") != "my-trace-123" {
		t.Errorf("echo: %q", r.header.Get("Concur-Correlationid"))
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s := newSim(t, Options{})
	r := get(t, s, "/oauth2/v0/token", "")
	if r.status != 405 || r.body["error"] != "invalid_request" {
		t.Errorf("GET token: %d %s", r.status, r.raw)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+usersPath, nil)
	if r := do(t, s.Client(), req); r.status != 405 {
		t.Errorf("POST users: %d", r.status)
	}
	if r := get(t, s, "/app-mgmt/v0/connections", ""); r.status != 405 {
		t.Errorf("GET connections: %d", r.status)
	}
}
