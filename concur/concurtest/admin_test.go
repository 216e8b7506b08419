package concurtest

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestAdminEndpoints(t *testing.T) {
	s := newSim(t, Options{Users: 4})
	s.EnableAdmin(testClient, testCompany)
	call := func(method, path string, body any) reply {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), method, s.URL+path, nil)
		if body != nil {
			req, _ = http.NewRequestWithContext(context.Background(), method, s.URL+path, jsonBody(body))
			req.Header.Set("Content-Type", "application/json")
		}
		return do(t, s.Client(), req)
	}

	r := call(http.MethodGet, "/_sim/users", nil)
	var users []User
	if err := json.Unmarshal(r.raw, &users); err != nil || len(users) != 4 || users[0] != s.Users(testCompany)[0] {
		t.Fatalf("users: %s (%v)", r.raw, err)
	}

	rt := call(http.MethodPost, "/_sim/request-token", nil).body["request_token"].(string)
	g := postForm(t, s, s.URL, passwordForm(testCompany, rt))
	if g.status != 200 {
		t.Fatalf("grant with admin request token: %d", g.status)
	}
	if cur := call(http.MethodGet, "/_sim/current-refresh-token", nil).body["refresh_token"]; cur != g.body["refresh_token"] {
		t.Errorf("current-refresh-token = %v", cur)
	}
	seeded := call(http.MethodPost, "/_sim/refresh-token", nil).body["refresh_token"].(string)
	if !s.RefreshTokenValid(seeded) {
		t.Fatal("seeded refresh token not valid")
	}

	if r := call(http.MethodPost, "/_sim/fault", map[string]any{
		"endpoint": "token", "count": 2, "kind": "status", "status": 429, "retry_after": "0",
	}); r.status != 200 {
		t.Fatalf("fault: %d %s", r.status, r.raw)
	}
	if s.PendingFaults(EndpointToken) != 2 {
		t.Fatalf("pending = %d", s.PendingFaults(EndpointToken))
	}
	if r := refresh(t, s, seeded); r.status != 429 || r.header.Get("Retry-After") != "0" {
		t.Errorf("injected 429: %d", r.status)
	}
	call(http.MethodPost, "/_sim/fault", map[string]any{"endpoint": "users", "kind": "delay", "delay_ms": 1})
	if s.PendingFaults(EndpointUsers) != 1 {
		t.Error("count defaults to 1")
	}
	for _, bad := range []map[string]any{{"endpoint": "nope", "kind": "drop"}, {"endpoint": "token", "kind": "explode"}} {
		if r := call(http.MethodPost, "/_sim/fault", bad); r.status != 400 {
			t.Errorf("bad fault %v: %d", bad, r.status)
		}
	}
	call(http.MethodPost, "/_sim/clear-faults", nil)
	if s.PendingFaults(EndpointToken)+s.PendingFaults(EndpointUsers) != 0 {
		t.Error("clear-faults")
	}

	call(http.MethodPost, "/_sim/rotation", map[string]any{"rotation": "rotate"})
	if s.CurrentRotation() != RotationRotate {
		t.Error("rotation")
	}
	if r := call(http.MethodPost, "/_sim/rotation", map[string]any{"rotation": "sideways"}); r.status != 400 {
		t.Error("bad rotation accepted")
	}

	call(http.MethodPost, "/_sim/clock/advance", map[string]any{"seconds": 3600})
	if !s.Clock.Now().Equal(testEpoch.Add(time.Hour)) {
		t.Errorf("clock = %v", s.Clock.Now())
	}

	st := call(http.MethodGet, "/_sim/stats", nil)
	calls, _ := st.body["calls"].(map[string]any)
	grants, _ := st.body["grants"].(map[string]any)
	if calls["token"] != float64(2) || grants["password"] != float64(1) || grants["refresh_token"] != float64(1) {
		t.Errorf("stats: %s", st.raw)
	}
	if _, ok := st.body["errors"].(map[string]any); !ok {
		t.Errorf("stats errors: %s", st.raw)
	}
	call(http.MethodPost, "/_sim/reset-counters", nil)
	if s.Calls(EndpointToken) != 0 {
		t.Error("reset-counters")
	}

	call(http.MethodPost, "/_sim/revoke", nil)
	if s.RefreshTokenValid(seeded) {
		t.Error("revoke")
	}
	if r := call(http.MethodGet, "/_sim/revoke", nil); r.status != 405 {
		t.Errorf("GET revoke: %d", r.status)
	}
	if r := call(http.MethodGet, "/_sim/nothing", nil); r.status != 404 {
		t.Errorf("unknown admin path: %d", r.status)
	}
	// Admin calls are not counted as API calls.
	if s.Calls(EndpointToken)+s.Calls(EndpointUsers) != 0 {
		t.Error("admin calls counted")
	}
}
