package concur_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// These tests use tiny httptest servers to control each byte of an answer;
// sim_test.go runs the client against the Concur simulator.

const (
	testClientID     = "7b0b7c2a-1a3e-4bb0-9d1f-0d2c1b0f0a11"
	testClientSecret = "CLIENT-SECRET-0f9e8d7c"
	testCompanyUUID  = "aa076ada-80a9-4f57-8e98-9300b1c3171d"
	testRequestToken = "at-REQUEST-TOKEN-si86uekvgga2qj2i1bfj89juqgn"
	testRefreshToken = "REFRESH-TOKEN-8c844478"
	testAccessToken  = "ACCESS-TOKEN-eyJhbGciOi"
	testUserID       = "3df11695-e8bb-40ff-8e98-c85913ab2789"
)

var testCreds = concur.Credentials{ClientID: testClientID, ClientSecret: concur.NewSecret(testClientSecret)}

// allSecrets must never show up in an error, a log line, a URL or a header.
var allSecrets = []string{testClientSecret, testRequestToken, testRefreshToken, testAccessToken}

// fastRetry keeps real-time backoffs in milliseconds.
var fastRetry = concur.RetryPolicy{
	MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, MaxElapsed: 10 * time.Second,
}

type testServer struct {
	*httptest.Server
	calls atomic.Int32
}

func serve(t *testing.T, h http.HandlerFunc) *testServer {
	t.Helper()
	ts := &testServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.calls.Add(1)
		h(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// hang stalls like an overloaded server until the client goes away. The
// body is read first: only then does net/http notice a closed connection.
func hang(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(3 * time.Second):
	}
}

func (ts *testServer) count() int { return int(ts.calls.Load()) }

func newClient(t *testing.T, opts concur.Options) *concur.Client {
	t.Helper()
	if opts.AllowedHosts == nil {
		opts.AllowedHosts = []string{"http://127.0.0.1:*"}
	}
	if opts.Retry == (concur.RetryPolicy{}) {
		opts.Retry = fastRetry
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	c, err := concur.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("concur-correlationid", "cid-test")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func tokenBody(refresh string) map[string]any {
	m := map[string]any{"access_token": testAccessToken, "token_type": "Bearer", "expires_in": 3600, "scope": "openid"}
	if refresh != "" {
		m["refresh_token"] = refresh
	}
	return m
}

func asError(t *testing.T, err error) *concur.Error {
	t.Helper()
	var ce *concur.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *concur.Error", err, err)
	}
	return ce
}

// assertNoSecrets checks every printing of v.
func assertNoSecrets(t *testing.T, what string, v any) {
	t.Helper()
	j, _ := json.Marshal(v)
	texts := []string{fmt.Sprint(v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), string(j)}
	if err, ok := v.(error); ok && err != nil {
		texts = append(texts, err.Error())
	}
	for _, s := range texts {
		for _, secret := range allSecrets {
			if strings.Contains(s, secret) {
				t.Fatalf("%s shows a secret: %s", what, s)
			}
		}
	}
}

func TestTokenRequestShape(t *testing.T) {
	var mu sync.Mutex
	var forms []url.Values
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		problems := []string{}
		if r.Method != http.MethodPost || r.URL.Path != "/oauth2/v0/token" || r.URL.RawQuery != "" {
			problems = append(problems, "request line "+r.Method+" "+r.URL.String())
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			problems = append(problems, "Content-Type "+ct)
		}
		if r.Header.Get("Accept") != "application/json" || r.Header.Get("User-Agent") != "test-agent/1" {
			problems = append(problems, "Accept/User-Agent")
		}
		if r.Header.Get("Authorization") != "" {
			problems = append(problems, "Authorization header sent")
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				for _, s := range allSecrets {
					if strings.Contains(v, s) || strings.Contains(k, s) {
						problems = append(problems, "secret in header "+k)
					}
				}
			}
		}
		body, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(body))
		if err != nil {
			problems = append(problems, "body is not a form")
		}
		if len(problems) > 0 {
			writeJSON(w, 400, map[string]any{"error": "invalid_request", "error_description": strings.Join(problems, "; ")})
			return
		}
		mu.Lock()
		forms = append(forms, form)
		mu.Unlock()
		writeJSON(w, 200, tokenBody("NEW-REFRESH"))
	})
	c := newClient(t, concur.Options{UserAgent: "test-agent/1"})
	ctx := context.Background()

	tok, err := c.ExchangeRequestToken(ctx, ts.URL, testCreds, testCompanyUUID, concur.NewSecret(testRequestToken))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken.Reveal() != "NEW-REFRESH" || tok.CorrelationID != "cid-test" {
		t.Errorf("token = %+v", tok)
	}
	if _, err := c.Refresh(ctx, ts.URL+"/ignored/path", testCreds, concur.NewSecret(testRefreshToken)); err != nil {
		t.Fatal(err)
	}

	want := []url.Values{
		{"client_id": {testClientID}, "client_secret": {testClientSecret}, "grant_type": {"password"},
			"username": {testCompanyUUID}, "password": {testRequestToken}, "credtype": {"authtoken"}},
		{"client_id": {testClientID}, "client_secret": {testClientSecret}, "grant_type": {"refresh_token"},
			"refresh_token": {testRefreshToken}},
	}
	if len(forms) != 2 {
		t.Fatalf("got %d forms", len(forms))
	}
	for i := range want {
		if fmt.Sprint(forms[i]) != fmt.Sprint(want[i]) {
			t.Errorf("form %d = %v, want %v", i, forms[i], want[i])
		}
	}
}

func TestRefreshKeepsPresentedTokenWhenResponseHasNone(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"access_token": testAccessToken, "expires_in": "3600"})
	})
	c := newClient(t, concur.Options{})
	tok, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken.Reveal() != testRefreshToken {
		t.Fatalf("refresh token = %q, want the presented one", tok.RefreshToken.Reveal())
	}
	if !tok.RefreshExpiresAt.IsZero() || tok.Geolocation != "" {
		t.Errorf("absent fields decoded as %v / %q", tok.RefreshExpiresAt, tok.Geolocation)
	}
}

// waits records the pauses the client asks for instead of sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) wait(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func (w *waits) got() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// failOnce answers the first request with status and Retry-After, then a token.
func failOnce(t *testing.T, status int, retryAfter string) *testServer {
	ts := serve(t, nil)
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ts.calls.Add(1) == 1 {
			w.Header().Set("Retry-After", retryAfter)
			writeJSON(w, status, map[string]any{"error": map[string]any{"id": "security.rate.limit.reached"}})
			return
		}
		writeJSON(w, 200, tokenBody(""))
	})
	return ts
}

// "Retry-After: 0" is not a licence to hammer: the wait is at least MinBackoff.
func TestRetryAfterZeroGetsTheMinimumBackoff(t *testing.T) {
	ts := failOnce(t, 429, "0")
	w := &waits{}
	c := newClient(t, concur.Options{Wait: w.wait, Retry: concur.RetryPolicy{
		MaxAttempts: 2, MinBackoff: 2 * time.Second, MaxBackoff: 2 * time.Second,
	}})
	if _, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken)); err != nil {
		t.Fatal(err)
	}
	if got := w.got(); ts.count() != 2 || len(got) != 1 || got[0] != 2*time.Second {
		t.Fatalf("waits %v, %d calls; want one wait of MinBackoff", got, ts.count())
	}
}

// A Retry-After that fits the budget is waited in full (not capped by
// MaxBackoff); one that does not ends the call at once and is reported, so
// the caller makes it the next attempt time (issue 10.4).
func TestRetryAfterWithinAndBeyondTheBudget(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	retry := concur.RetryPolicy{MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 150 * time.Millisecond, MaxElapsed: time.Minute}

	ts := failOnce(t, 503, now.Add(30*time.Second).Format(http.TimeFormat))
	w := &waits{}
	c := newClient(t, concur.Options{Now: func() time.Time { return now }, Wait: w.wait, Retry: retry})
	if _, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken)); err != nil {
		t.Fatal(err)
	}
	if got := w.got(); len(got) != 1 || got[0] != 30*time.Second {
		t.Fatalf("waits %v; want the 30s Concur asked for", got)
	}

	for name, ra := range map[string]string{"seconds": "3600", "date": now.Add(time.Hour).Format(http.TimeFormat)} {
		ts := failOnce(t, 429, ra)
		w := &waits{}
		c := newClient(t, concur.Options{Now: func() time.Time { return now }, Wait: w.wait, Retry: retry})
		_, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
		ce := asError(t, err)
		if ts.count() != 1 || len(w.got()) != 0 {
			t.Errorf("%s: %d calls, waits %v; want the call ended at once", name, ts.count(), w.got())
		}
		if !ce.HasRetryAfter || ce.RetryAfter != time.Hour || ce.StatusCode != 429 || ce.Class != concur.ClassTransient {
			t.Errorf("%s: error = %+v", name, ce)
		}
	}

	// With no retries left, the error reports what the server asked for.
	ts2 := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", now.Add(30*time.Second).Format(http.TimeFormat))
		writeJSON(w, 503, nil)
	})
	c = newClient(t, concur.Options{Now: func() time.Time { return now }, Retry: concur.RetryPolicy{MaxAttempts: 1}})
	_, err := c.Refresh(context.Background(), ts2.URL, testCreds, concur.NewSecret(testRefreshToken))
	ce := asError(t, err)
	if !ce.HasRetryAfter || ce.RetryAfter != 30*time.Second || ce.StatusCode != 503 || ce.Class != concur.ClassTransient {
		t.Fatalf("error = %+v", ce)
	}
}

// Without Retry-After the waits grow from MinBackoff and stay within MaxBackoff.
func TestBackoffGrowsWithinBounds(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 502, nil) })
	w := &waits{}
	c := newClient(t, concur.Options{Wait: w.wait, Retry: concur.RetryPolicy{
		MaxAttempts: 6, MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
	}})
	_, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
	if asError(t, err).StatusCode != 502 || ts.count() != 6 {
		t.Fatalf("err %v after %d calls", err, ts.count())
	}
	got := w.got()
	if len(got) != 5 {
		t.Fatalf("waits %v", got)
	}
	for i, d := range got {
		if d < 100*time.Millisecond || d > 400*time.Millisecond {
			t.Errorf("wait %d = %s, outside [MinBackoff, MaxBackoff]", i, d)
		}
	}
	if got[4] < 200*time.Millisecond {
		t.Errorf("fifth wait %s: backoff did not grow", got[4])
	}
}

// The wait gives way to the caller's context.
func TestWaitIsCutShortByTheCaller(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 503, nil) })
	ctx, cancel := context.WithCancel(context.Background())
	wait := func(ctx context.Context, d time.Duration) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	c := newClient(t, concur.Options{Wait: wait, Retry: concur.RetryPolicy{
		MaxAttempts: 5, MinBackoff: time.Hour, MaxBackoff: time.Hour, MaxElapsed: 2 * time.Hour,
	}})
	_, err := c.Refresh(ctx, ts.URL, testCreds, concur.NewSecret(testRefreshToken))
	if !errors.Is(err, context.Canceled) || ts.count() != 1 {
		t.Fatalf("err %v after %d calls", err, ts.count())
	}
}

func TestAttemptBoundReturnsLastResponseError(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "0")
		writeJSON(w, 500, map[string]any{"error": "server_error", "error_description": "boom"})
	})
	c := newClient(t, concur.Options{Retry: concur.RetryPolicy{
		MaxAttempts: 4, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	}})
	_, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
	ce := asError(t, err)
	if ts.count() != 4 {
		t.Errorf("%d attempts, want 4", ts.count())
	}
	if ce.StatusCode != 500 || ce.ErrorCode != "server_error" || ce.CorrelationID != "cid-test" || !ce.HasRetryAfter || ce.RetryAfter != 0 {
		t.Errorf("error = %+v", ce)
	}
	if strings.Contains(err.Error(), "giving up") {
		t.Errorf("generic retry text: %v", err)
	}
	assertNoSecrets(t, "error", err)

	// MaxAttempts 1 disables retries.
	ts.calls.Store(0)
	c = newClient(t, concur.Options{Retry: concur.RetryPolicy{MaxAttempts: 1}})
	_, _ = c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
	if ts.count() != 1 {
		t.Errorf("%d attempts with retries disabled", ts.count())
	}
}

func TestElapsedBound(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, 503, nil)
	})
	c := newClient(t, concur.Options{Retry: concur.RetryPolicy{
		MaxAttempts: 10, MinBackoff: time.Millisecond, MaxBackoff: time.Second, MaxElapsed: 300 * time.Millisecond,
	}})
	start := time.Now()
	_, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("took %s; a wait past the budget should end the call at once", d)
	}
	if ce := asError(t, err); ce.StatusCode != 503 {
		t.Errorf("error = %+v", ce)
	}

	// Short waits: attempts continue until the budget runs out.
	ts2 := serve(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		writeJSON(w, 502, nil)
	})
	c = newClient(t, concur.Options{Retry: concur.RetryPolicy{
		MaxAttempts: 1000, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxElapsed: 200 * time.Millisecond,
	}})
	start = time.Now()
	_, err = c.Refresh(context.Background(), ts2.URL, testCreds, concur.NewSecret(testRefreshToken))
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s, budget 200ms", d)
	}
	if n := ts2.count(); n < 3 || n > 20 {
		t.Errorf("%d attempts within 200ms", n)
	}
	if ce := asError(t, err); ce.StatusCode != 502 {
		t.Errorf("last error = %+v; want the last response's status", ce)
	}
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	for _, code := range []int{108, 5, 64, 59} {
		ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "no", "code": code})
		})
		c := newClient(t, concur.Options{})
		_, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
		if !concur.IsPermanent(err) || asError(t, err).Code != code || ts.count() != 1 {
			t.Errorf("code %d: err %v after %d calls", code, err, ts.count())
		}
	}
}

func TestPerAttemptTimeout(t *testing.T) {
	ts := serve(t, nil)
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ts.calls.Add(1) == 1 {
			hang(r)
			return
		}
		writeJSON(w, 200, tokenBody(""))
	})
	c := newClient(t, concur.Options{Timeout: 100 * time.Millisecond})
	start := time.Now()
	if _, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second || ts.count() != 2 {
		t.Fatalf("took %s, %d calls", d, ts.count())
	}

	// Every attempt times out: a transient error with no status.
	ts2 := serve(t, func(w http.ResponseWriter, r *http.Request) { hang(r) })
	c = newClient(t, concur.Options{Timeout: 50 * time.Millisecond, Retry: concur.RetryPolicy{
		MaxAttempts: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
	}})
	_, err := c.Refresh(context.Background(), ts2.URL, testCreds, concur.NewSecret(testRefreshToken))
	ce := asError(t, err)
	if ce.Class != concur.ClassTransient || ce.StatusCode != 0 || ts2.count() != 2 {
		t.Fatalf("error = %v after %d calls", err, ts2.count())
	}
	assertNoSecrets(t, "timeout error", err)
}

func TestCallerCancellationStopsAtOnce(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "10")
		writeJSON(w, 503, nil)
	})
	c := newClient(t, concur.Options{Retry: concur.RetryPolicy{MaxAttempts: 5, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Second}})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Refresh(ctx, ts.URL, testCreds, concur.NewSecret(testRefreshToken))
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancellation took %s", d)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}

	// Cancelled during the request itself.
	ts2 := serve(t, func(w http.ResponseWriter, r *http.Request) { hang(r) })
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	_, err = c.GetUser(ctx, ts2.URL, concur.NewSecret(testAccessToken), testUserID, concur.UserQuery{})
	if d := time.Since(start); d > time.Second || !errors.Is(err, context.Canceled) || ts2.count() != 1 {
		t.Errorf("err = %v after %s and %d calls", err, d, ts2.count())
	}

	// Already cancelled: nothing is sent.
	_, err = c.GetUser(ctx, ts2.URL, concur.NewSecret(testAccessToken), testUserID, concur.UserQuery{})
	if !errors.Is(err, context.Canceled) || ts2.count() != 1 {
		t.Errorf("err = %v, %d calls", err, ts2.count())
	}
}

func TestBodyLimit(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4096)
	for _, chunked := range []bool{false, true} {
		ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
			if chunked {
				w.WriteHeader(200)
				w.(http.Flusher).Flush() // no Content-Length: the limit must hold while reading
			}
			_, _ = w.Write([]byte(`{"access_token":"` + testAccessToken + `","pad":"`))
			_, _ = w.Write(big)
			_, _ = w.Write([]byte(`"}`))
		})
		// A grant's oversized 2xx is final: the grant happened.
		c := newClient(t, concur.Options{MaxBodyBytes: 1024})
		_, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
		ce := asError(t, err)
		if ce.Class != concur.ClassGrantOutcomeUnknown || !strings.Contains(err.Error(), "exceeds the limit") || ts.count() != 1 {
			t.Errorf("chunked=%v: %v after %d calls", chunked, err, ts.count())
		}
		assertNoSecrets(t, "oversized error", err)

		// Identity reads change nothing at Concur: an oversized answer is retried.
		ts.calls.Store(0)
		_, err = c.GetUser(context.Background(), ts.URL, concur.NewSecret(testAccessToken), testUserID, concur.UserQuery{})
		if ce := asError(t, err); ce.Class != concur.ClassTransient || ts.count() != fastRetry.MaxAttempts {
			t.Errorf("chunked=%v: identity: %v after %d calls", chunked, err, ts.count())
		}
		ts.calls.Store(0)

		// The same body fits a larger limit.
		c = newClient(t, concur.Options{MaxBodyBytes: 8192})
		if _, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken)); err != nil {
			t.Errorf("chunked=%v: %v", chunked, err)
		}
	}
}

// A 2xx from the token endpoint is never re-sent, whatever its body
// (issue 10.3): cut off, not JSON, not an object, or without any token is
// grant_outcome_unknown after one call, naming status and correlation id.
func TestTokenGrant2xxIsNeverResent(t *testing.T) {
	bodies := map[string]string{
		"cut off":       `{"access_token":"` + testAccessToken + `","expi`,
		"not JSON":      `<html>ok</html>`,
		"not an object": `["` + testRefreshToken + `"]`,
		"no tokens":     `{"token_type":"Bearer","expires_in":3600}`,
		"empty":         ``,
	}
	for name, body := range bodies {
		ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("concur-correlationid", "cid-2xx")
			w.WriteHeader(200)
			_, _ = w.Write([]byte(body))
		})
		c := newClient(t, concur.Options{})
		for _, grant := range []string{"refresh", "password"} {
			ts.calls.Store(0)
			var err error
			if grant == "refresh" {
				_, err = c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
			} else {
				_, err = c.ExchangeRequestToken(context.Background(), ts.URL, testCreds, testCompanyUUID, concur.NewSecret(testRequestToken))
			}
			ce := asError(t, err)
			if !concur.IsGrantOutcomeUnknown(err) || ts.count() != 1 || concur.RefusedForGood(err) {
				t.Errorf("%s, %s grant: %v after %d calls", name, grant, err, ts.count())
			}
			if ce.StatusCode != 200 || ce.CorrelationID != "cid-2xx" || !strings.Contains(err.Error(), "HTTP 200") ||
				!strings.Contains(err.Error(), "cid-2xx") {
				t.Errorf("%s: error does not name status and correlation id: %v", name, err)
			}
			assertNoSecrets(t, "grant outcome error", err)
		}
	}

	// Only a refresh token, odd types elsewhere: the token is kept, with warnings.
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{
			"refresh_token": "NEW-" + testRefreshToken, "refresh_expires_in": 1703696549, "scope": []string{"openid"},
		})
	})
	c := newClient(t, concur.Options{})
	tok, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
	if err != nil || ts.count() != 1 {
		t.Fatalf("err %v after %d calls", err, ts.count())
	}
	if tok.RefreshToken.Reveal() != "NEW-"+testRefreshToken || !tok.AccessToken.IsZero() || len(tok.Warnings) != 1 {
		t.Errorf("token = %+v", tok)
	}
}

// Identity reads are not grants: an unusable 2xx is retried, as before.
func TestIdentityMalformedSuccessIsRetried(t *testing.T) {
	ts := serve(t, nil)
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ts.calls.Add(1) == 1 {
			_, _ = w.Write([]byte(`{"id":`))
			return
		}
		writeJSON(w, 200, map[string]any{"id": testUserID})
	})
	c := newClient(t, concur.Options{})
	_, err := c.GetUser(context.Background(), ts.URL, concur.NewSecret(testAccessToken), testUserID, concur.UserQuery{})
	if err != nil || ts.count() != 2 {
		t.Fatalf("err %v after %d calls", err, ts.count())
	}
}

func TestDroppedConnectionIsRetried(t *testing.T) {
	ts := serve(t, nil)
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ts.calls.Add(1) == 1 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		writeJSON(w, 200, tokenBody(""))
	})
	c := newClient(t, concur.Options{})
	if _, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken)); err != nil || ts.count() != 2 {
		t.Fatalf("err %v after %d calls", err, ts.count())
	}
}

func TestHTTPRedirectIsNotFollowed(t *testing.T) {
	target := serve(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, tokenBody("")) })
	for _, status := range []int{301, 302, 307, 308} {
		ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/oauth2/v0/token", status)
		})
		c := newClient(t, concur.Options{})
		_, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
		if !concur.IsPermanent(err) || asError(t, err).StatusCode != status || ts.count() != 1 {
			t.Errorf("%d: err %v after %d calls", status, err, ts.count())
		}
		_, err = c.GetUser(context.Background(), ts.URL, concur.NewSecret(testAccessToken), testUserID, concur.UserQuery{})
		if !concur.IsPermanent(err) {
			t.Errorf("%d on identity: err %v", status, err)
		}
	}
	if target.count() != 0 {
		t.Fatalf("the redirect target was called %d times", target.count())
	}
}

// code16 answers "user lives elsewhere" pointing at geo.
func code16(geo *string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, map[string]any{
			"error": "invalid_request", "error_description": "user lives elsewhere", "code": 16, "geolocation": *geo,
		})
	}
}

func TestCode16RedirectFollowedOnce(t *testing.T) {
	var homeURL string
	home := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b := tokenBody("NEW")
		b["geolocation"] = strings.ToUpper(homeURL) + "/oauth2/v0/token " // sloppy, normalised by the client
		writeJSON(w, 200, b)
	})
	homeURL = home.URL
	away := serve(t, code16(&homeURL))
	c := newClient(t, concur.Options{})
	tok, err := c.ExchangeRequestToken(context.Background(), away.URL, testCreds, testCompanyUUID, concur.NewSecret(testRequestToken))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Geolocation != home.URL || away.count() != 1 || home.count() != 1 {
		t.Fatalf("geolocation %q (want %q), calls away=%d home=%d", tok.Geolocation, home.URL, away.count(), home.count())
	}
}

func TestCode16RedirectLoopRefused(t *testing.T) {
	var aURL, bURL string
	a := serve(t, code16(&bURL))
	b := serve(t, code16(&aURL))
	aURL, bURL = a.URL, b.URL
	c := newClient(t, concur.Options{})
	_, err := c.Refresh(context.Background(), a.URL, testCreds, concur.NewSecret(testRefreshToken))
	if !concur.IsPermanent(err) || !strings.Contains(err.Error(), "loop") || a.count() != 1 || b.count() != 1 {
		t.Fatalf("err %v, calls a=%d b=%d", err, a.count(), b.count())
	}

	// A 16 naming the host just called is a loop too, without a second call.
	self := serve(t, nil)
	selfURL := ""
	self.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		self.calls.Add(1)
		code16(&selfURL)(w, r)
	})
	selfURL = self.URL
	_, err = c.Refresh(context.Background(), self.URL, testCreds, concur.NewSecret(testRefreshToken))
	if !concur.IsPermanent(err) || self.count() != 1 {
		t.Fatalf("err %v after %d calls", err, self.count())
	}
}

func TestCode16ToDisallowedHostRefused(t *testing.T) {
	for _, geo := range []string{"https://login.evil.com", "https://x.concursolutions.com@evil.com", "not a url", ""} {
		g := geo
		ts := serve(t, code16(&g))
		c := newClient(t, concur.Options{AllowedHosts: []string{"http://127.0.0.1:*", concur.DefaultAllowedHost}})
		_, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
		ce := asError(t, err)
		if ce.Class != concur.ClassPermanent || ts.count() != 1 {
			t.Errorf("geo %q: %v after %d calls", geo, err, ts.count())
		}
		if geo == "https://login.evil.com" && !strings.Contains(err.Error(), "login.evil.com") {
			t.Errorf("error does not name the refused host: %v", err)
		}
	}
}

func TestDisallowedBaseURLSendsNothing(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, tokenBody("")) })
	c, err := concur.New(concur.Options{}) // default allow-list: https://*.concursolutions.com only
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err1 := c.Refresh(ctx, ts.URL, testCreds, concur.NewSecret(testRefreshToken))
	_, err2 := c.ExchangeRequestToken(ctx, ts.URL, testCreds, testCompanyUUID, concur.NewSecret(testRequestToken))
	_, err3 := c.GetUser(ctx, ts.URL, concur.NewSecret(testAccessToken), testUserID, concur.UserQuery{})
	err4 := c.RevokeConnection(ctx, ts.URL, concur.NewSecret(testAccessToken))
	userinfoHost := "https://x.concursolutions.com@" + strings.TrimPrefix(ts.URL, "http://")
	_, err5 := c.Refresh(ctx, userinfoHost, testCreds, concur.NewSecret(testRefreshToken))
	for i, err := range []error{err1, err2, err3, err4, err5} {
		if !concur.IsPermanent(err) {
			t.Errorf("call %d: err %v, want permanent", i+1, err)
		}
	}
	if ts.count() != 0 {
		t.Fatalf("%d requests reached a host off the allow-list", ts.count())
	}
}

func TestIdentityRequests(t *testing.T) {
	var mu sync.Mutex
	var seen []*http.Request
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Clone(r.Context()))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+testAccessToken || r.Header.Get("Accept") != "application/json" ||
			r.Header.Get("User-Agent") != concur.DefaultUserAgent {
			writeJSON(w, 401, map[string]any{"errorId": "UNAUTHORIZED"})
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/profile/identity/v4/Users/"+testUserID:
			writeJSON(w, 200, map[string]any{"id": testUserID, "userName": "a@b.com"})
		case r.Method == http.MethodGet && r.URL.Path == "/profile/identity/v4/Users":
			writeJSON(w, 200, map[string]any{
				"schemas":      []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"},
				"totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
				"Resources": []any{map[string]any{"id": testUserID}}})
		case r.Method == http.MethodDelete && r.URL.Path == "/app-mgmt/v0/connections":
			w.WriteHeader(200)
		default:
			writeJSON(w, 404, map[string]any{"status": "404", "detail": "no route"})
		}
	})
	c := newClient(t, concur.Options{})
	ctx, at := context.Background(), concur.NewSecret(testAccessToken)

	user, err := c.GetUser(ctx, ts.URL, at, testUserID,
		concur.UserQuery{Attributes: []string{"id", "userName"}, ExcludedAttributes: []string{"emails"}})
	if err != nil || user["userName"] != "a@b.com" {
		t.Fatalf("GetUser = %v, %v", user, err)
	}
	if q := seen[0].URL.Query(); q.Get("attributes") != "id,userName" || q.Get("excludedAttributes") != "emails" {
		t.Errorf("query = %q", seen[0].URL.RawQuery)
	}

	value := `a"b\c d&e=f`
	list, err := c.FindUsers(ctx, ts.URL, at, concur.UserFilter{Attribute: concur.FilterUserName, Value: value, Count: 5, StartIndex: 3})
	if err != nil || list.TotalResults != 1 || len(list.Resources) != 1 {
		t.Fatalf("FindUsers = %+v, %v", list, err)
	}
	q := seen[1].URL.Query()
	if got, want := q.Get("filter"), `userName eq "a\"b\\c d&e=f"`; got != want {
		t.Errorf("filter = %s, want %s", got, want)
	}
	if q.Get("count") != "5" || q.Get("startIndex") != "3" || len(q) != 3 {
		t.Errorf("query = %q", seen[1].URL.RawQuery)
	}
	if strings.ContainsAny(seen[1].URL.RawQuery, `"\ `) {
		t.Errorf("raw query not escaped: %q", seen[1].URL.RawQuery)
	}

	if err := c.RevokeConnection(ctx, ts.URL, at); err != nil {
		t.Fatal(err)
	}
	for _, r := range seen {
		if strings.Contains(r.URL.String(), testAccessToken) {
			t.Errorf("token in URL %s", r.URL)
		}
	}
}

func TestIdentityInputValidationSendsNothing(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{}) })
	c := newClient(t, concur.Options{})
	ctx, at := context.Background(), concur.NewSecret(testAccessToken)
	for _, id := range []string{"../../oauth2/v0/token", testUserID + "?x=", testUserID + "/../x", "not-a-uuid", "", "%2e%2e"} {
		_, err := c.GetUser(ctx, ts.URL, at, id, concur.UserQuery{})
		if concur.ClassOf(err) != concur.ClassInvalidRequest {
			t.Errorf("id %q: %v", id, err)
		}
	}
	for _, f := range []concur.UserFilter{
		{Attribute: "displayName", Value: "x"},
		{Attribute: `userName eq "x" or userName`, Value: "x"},
		{Attribute: concur.FilterUserName, Value: ""},
		{Attribute: concur.FilterUserName, Value: "x", Count: 101},
		{Attribute: concur.FilterUserName, Value: "x", Count: -1},
		{Attribute: concur.FilterUserName, Value: "x", StartIndex: -1},
	} {
		if _, err := c.FindUsers(ctx, ts.URL, at, f); concur.ClassOf(err) != concur.ClassInvalidRequest {
			t.Errorf("filter %+v: %v", f, err)
		}
	}
	if _, err := c.GetUser(ctx, ts.URL, concur.Secret{}, testUserID, concur.UserQuery{}); err == nil {
		t.Error("empty access token accepted")
	}
	if ts.count() != 0 {
		t.Fatalf("%d requests sent for invalid input", ts.count())
	}
}

func TestIdentityErrorClasses(t *testing.T) {
	tests := []struct {
		status int
		body   string
		class  concur.Class
		calls  int
	}{
		{401, `{"errorId":"UNAUTHORIZED"}`, concur.ClassUnauthorized, 1},
		{403, `<html>no</html>`, concur.ClassUnauthorized, 1},
		{404, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404","detail":"User not found"}`, concur.ClassInvalidRequest, 1},
		{400, `{"status":"400","scimType":"invalidFilter","detail":"bad"}`, concur.ClassInvalidRequest, 1},
		{500, `{}`, concur.ClassTransient, fastRetry.MaxAttempts},
		{429, `{}`, concur.ClassTransient, fastRetry.MaxAttempts},
	}
	for _, tt := range tests {
		ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Concur-CorrelationID", "cid-x")
			w.WriteHeader(tt.status)
			_, _ = w.Write([]byte(tt.body))
		})
		c := newClient(t, concur.Options{})
		_, err := c.GetUser(context.Background(), ts.URL, concur.NewSecret(testAccessToken), testUserID, concur.UserQuery{})
		ce := asError(t, err)
		if ce.Class != tt.class || ce.StatusCode != tt.status || ce.CorrelationID != "cid-x" || ts.count() != tt.calls {
			t.Errorf("%d: %+v after %d calls", tt.status, ce, ts.count())
		}
		if tt.status == 401 && !concur.IsUnauthorized(err) {
			t.Errorf("IsUnauthorized false for 401")
		}
		assertNoSecrets(t, "identity error", err)
	}
}

func TestErrorsAndLogsNeverShowSecrets(t *testing.T) {
	// A server that echoes the credentials it got back into its error.
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		desc := "got " + string(body) + " " + r.Header.Get("Authorization")
		writeJSON(w, 400, map[string]any{"error": "invalid_grant " + form.Get("client_secret"), "error_description": desc, "code": 108,
			"concur-correlationid": form.Get("refresh_token")})
	})
	var logs bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs, JSONFormat: true})
	c := newClient(t, concur.Options{Logger: logger})
	ctx := context.Background()

	_, err := c.Refresh(ctx, ts.URL, testCreds, concur.NewSecret(testRefreshToken))
	assertNoSecrets(t, "refresh error", err)
	_, err = c.ExchangeRequestToken(ctx, ts.URL, testCreds, testCompanyUUID, concur.NewSecret(testRequestToken))
	assertNoSecrets(t, "password-grant error", err)
	_, err = c.GetUser(ctx, ts.URL, concur.NewSecret(testAccessToken), testUserID, concur.UserQuery{})
	assertNoSecrets(t, "identity error", err)

	// Transport errors (refused connection) too.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	_, err = c.Refresh(ctx, deadURL, testCreds, concur.NewSecret(testRefreshToken))
	if concur.ClassOf(err) != concur.ClassTransient || asError(t, err).StatusCode != 0 {
		t.Errorf("refused connection: %v", err)
	}
	assertNoSecrets(t, "transport error", err)

	out := logs.String()
	if !strings.Contains(out, `"attempt"`) || !strings.Contains(out, `"status":400`) || !strings.Contains(out, "/oauth2/v0/token") {
		t.Errorf("expected debug lines, got %s", out)
	}
	for _, s := range allSecrets {
		if strings.Contains(out, s) {
			t.Fatalf("log shows a secret: %s", out)
		}
	}
}

func TestTokenAndErrorPrinting(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b := tokenBody(testRefreshToken)
		b["id_token"] = testAccessToken + ".id"
		writeJSON(w, 200, b)
	})
	c := newClient(t, concur.Options{})
	tok, err := c.ExchangeRequestToken(context.Background(), ts.URL, testCreds, testCompanyUUID, concur.NewSecret(testRequestToken))
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "token", tok)
	assertNoSecrets(t, "token value", *tok)
	assertNoSecrets(t, "credentials", testCreds)
	assertNoSecrets(t, "error", &concur.Error{Op: "x", StatusCode: 400, Err: errors.New("plain")})
}

// Concur's deprecation headers reach Options.OnDeprecation once per
// response that carries one, cleaned and bounded (issue 11.6).
func TestDeprecationHeadersAreReported(t *testing.T) {
	ts := serve(t, nil)
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.calls.Add(1)
		switch {
		case r.URL.Path == "/oauth2/v0/token" && n == 1:
			w.Header().Set("X-Api-Warn", "token v0 is deprecated\t"+strings.Repeat("x", 2000))
			writeJSON(w, 503, nil)
		case r.URL.Path == "/oauth2/v0/token":
			w.Header().Set("Sunset", "Wed, 30 Dec 2026 23:59:59 GMT")
			writeJSON(w, 200, tokenBody(""))
		default:
			writeJSON(w, 200, map[string]any{"id": testUserID}) // no headers
		}
	})
	var mu sync.Mutex
	var got []concur.DeprecationNotice
	c := newClient(t, concur.Options{OnDeprecation: func(n concur.DeprecationNotice) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, n)
	}})
	if _, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUser(context.Background(), ts.URL, concur.NewSecret(testAccessToken), testUserID, concur.UserQuery{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("notices %+v, want one per response with a header", got)
	}
	w := got[0]
	if w.Op != "refresh grant" || w.Path != "/oauth2/v0/token" || w.Sunset != "" ||
		!strings.HasPrefix(w.Warning, "token v0 is deprecated") || strings.ContainsRune(w.Warning, '\t') || len(w.Warning) > 600 {
		t.Errorf("first notice = %+v", w)
	}
	if got[1].Sunset != "Wed, 30 Dec 2026 23:59:59 GMT" || got[1].Warning != "" {
		t.Errorf("second notice = %+v", got[1])
	}
}

// The caller giving up while a grant's 2xx body is still arriving does not
// hide that the grant happened.
func TestCallerGivingUpMidBodyStillReportsTheGrant(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("concur-correlationid", "cid-mid")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"access_token":"`))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	// The caller gives up just after the status line arrived.
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		cancel()
		return resp, err
	})}
	c := newClient(t, concur.Options{HTTPClient: hc})
	_, err := c.Refresh(ctx, ts.URL, testCreds, concur.NewSecret(testRefreshToken))
	if !concur.IsGrantOutcomeUnknown(err) || !errors.Is(err, context.Canceled) || ts.count() != 1 {
		t.Fatalf("err %v after %d calls", err, ts.count())
	}
	if ce := asError(t, err); ce.StatusCode != 200 || ce.CorrelationID != "cid-mid" {
		t.Fatalf("error = %+v", ce)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A credential the server echoes across the 512-character bound of its
// error text is scrubbed whole: the text is cut only after the scrub, so
// no first part of it survives in the error (and so in last_error or logs).
func TestEchoedSecretAcrossTheTextBoundIsScrubbedWhole(t *testing.T) {
	const bound = 512 // concur's maxTextLen
	for before := 8; before < len(testRefreshToken); before++ {
		pad := strings.Repeat("x", bound-before)
		ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 400, map[string]any{"error": pad + testRefreshToken, "code": 108,
				"error_description": pad + testRefreshToken + " is not a refresh token we know"})
		})
		c := newClient(t, concur.Options{})
		_, err := c.Refresh(context.Background(), ts.URL, testCreds, concur.NewSecret(testRefreshToken))
		ce := asError(t, err)
		if ce.Code != 108 || !strings.HasPrefix(ce.Description, pad+"[REDACTE") {
			t.Fatalf("secret at %d..%d: error %+v, want code 108 with the secret redacted", bound-before, bound, ce)
		}
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", ce), ce.ErrorCode, ce.Description} {
			if strings.Contains(s, testRefreshToken[:before]) {
				t.Fatalf("secret at %d..%d: its first %d characters survive: %s", bound-before, bound, before, s)
			}
		}
		if n := len([]rune(ce.Description)); n > bound+len("...") {
			t.Fatalf("description of %d characters, want at most %d", n, bound+3)
		}
	}
}
