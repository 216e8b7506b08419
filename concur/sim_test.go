package concur_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// These tests run the client against the Concur simulator.

var simEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type simEnv struct {
	sim    *concurtest.Server
	client *concur.Client
	ctx    context.Context
}

func newSimEnv(t *testing.T, simOpts concurtest.Options, opts concur.Options) *simEnv {
	t.Helper()
	if simOpts.Clock == nil {
		simOpts.Clock = concurtest.NewClock(simEpoch)
	}
	sim := concurtest.NewServer(simOpts)
	t.Cleanup(sim.Close)
	sim.AddClient(testClientID, testClientSecret)
	sim.AddCompany(testCompanyUUID, "")
	opts.HTTPClient = sim.Client()
	opts.Now = sim.Clock.Now
	return &simEnv{sim: sim, client: newClient(t, opts), ctx: context.Background()}
}

func (e *simEnv) exchange(t *testing.T, base string) *concur.Token {
	t.Helper()
	rt := e.sim.NewRequestToken(testClientID, testCompanyUUID)
	tok, err := e.client.ExchangeRequestToken(e.ctx, base, testCreds, testCompanyUUID, concur.NewSecret(rt))
	if err != nil {
		t.Fatalf("password grant: %v", err)
	}
	return tok
}

func (e *simEnv) refresh(refresh concur.Secret) (*concur.Token, error) {
	return e.client.Refresh(e.ctx, e.sim.URL, testCreds, refresh)
}

func TestSimGrantsAndIdentity(t *testing.T) {
	for _, asStrings := range []bool{false, true} {
		e := newSimEnv(t, concurtest.Options{ExpiresAsStrings: asStrings}, concur.Options{})
		tok2 := simGrants(t, e, asStrings)
		simIdentity(t, e, tok2)
		simRevoke(t, e, tok2)
	}
}

// simGrants: a password grant, then a refresh two hours on; returns the refreshed token.
func simGrants(t *testing.T, e *simEnv, asStrings bool) *concur.Token {
	t.Helper()
	tok := e.exchange(t, e.sim.URL)
	if tok.Geolocation != e.sim.URL || tok.TokenType != "Bearer" || tok.CorrelationID == "" {
		t.Fatalf("token %+v", tok)
	}
	if !tok.ExpiresAt.Equal(simEpoch.Add(time.Hour)) {
		t.Errorf("strings=%v: ExpiresAt %s", asStrings, tok.ExpiresAt)
	}
	if want := e.sim.RefreshTokenExpiry(tok.RefreshToken.Reveal()); !tok.RefreshExpiresAt.Equal(want) || want.IsZero() {
		t.Errorf("strings=%v: RefreshExpiresAt %s, want %s", asStrings, tok.RefreshExpiresAt, want)
	}
	if tok.RefreshToken.Reveal() != e.sim.CurrentRefreshToken(testClientID, testCompanyUUID) {
		t.Error("refresh token differs from the simulator's")
	}

	e.sim.Clock.Advance(2 * time.Hour)
	tok2, err := e.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if !tok2.ExpiresAt.Equal(simEpoch.Add(3 * time.Hour)) {
		t.Errorf("refreshed ExpiresAt %s", tok2.ExpiresAt)
	}
	return tok2
}

// simIdentity: GetUser and FindUsers with the refreshed token, and their 404/400 answers.
func simIdentity(t *testing.T, e *simEnv, tok2 *concur.Token) {
	t.Helper()
	geo, at := tok2.Geolocation, tok2.AccessToken
	users := e.sim.Users(testCompanyUUID)
	u, err := e.client.GetUser(e.ctx, geo, at, users[1].ID, concur.UserQuery{Attributes: []string{"userName"}})
	if err != nil || u["id"] != users[1].ID || u["userName"] != users[1].UserName {
		t.Fatalf("GetUser = %v, %v", u, err)
	}
	for attr, value := range map[string]string{
		concur.FilterUserName:       users[2].UserName,
		concur.FilterEmployeeNumber: users[2].EmployeeNumber,
		concur.FilterExternalID:     users[2].ExternalID,
	} {
		l, err := e.client.FindUsers(e.ctx, geo, at, concur.UserFilter{Attribute: attr, Value: value})
		if err != nil || l.TotalResults != 1 || len(l.Resources) != 1 || l.Resources[0]["id"] != users[2].ID {
			t.Errorf("FindUsers %s: %+v, %v", attr, l, err)
		}
	}
	// A value with quotes and backslashes is escaped, so it is a value the
	// simulator parses (and matches nobody) rather than a bad filter.
	l, err := e.client.FindUsers(e.ctx, geo, at, concur.UserFilter{Attribute: concur.FilterUserName, Value: `x" or userName eq "y\`})
	if err != nil || l.TotalResults != 0 {
		t.Errorf("escaped filter: %+v, %v", l, err)
	}
	l, err = e.client.FindUsers(e.ctx, geo, at, concur.UserFilter{Attribute: concur.FilterUserName, Value: "@", Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	_ = l
	l, err = e.client.FindUsers(e.ctx, geo, at,
		concur.UserFilter{Attribute: concur.FilterExternalID, Value: users[0].ExternalID, Count: 1, StartIndex: 1})
	if err != nil || len(l.Resources) != 1 {
		t.Errorf("paged: %+v, %v", l, err)
	}

	// Unknown user: 404, invalid request, not retried.
	e.sim.ResetCounters()
	_, err = e.client.GetUser(e.ctx, geo, at, "00000000-0000-4000-8000-000000000000", concur.UserQuery{})
	if concur.ClassOf(err) != concur.ClassInvalidRequest || asError(t, err).StatusCode != 404 || e.sim.Calls(concurtest.EndpointUsers) != 1 {
		t.Errorf("unknown user: %v", err)
	}
	// Bad attribute: 400 SCIM error.
	_, err = e.client.GetUser(e.ctx, geo, at, users[0].ID, concur.UserQuery{Attributes: []string{"no such attribute!"}})
	if concur.ClassOf(err) != concur.ClassInvalidRequest || asError(t, err).StatusCode != 400 {
		t.Errorf("bad attribute: %v", err)
	}
}

// simRevoke: RevokeConnection, then neither token works.
func simRevoke(t *testing.T, e *simEnv, tok2 *concur.Token) {
	t.Helper()
	users := e.sim.Users(testCompanyUUID)
	geo, at := tok2.Geolocation, tok2.AccessToken
	// Revocation kills the refresh token (108, permanent) and the access token (401).
	if err := e.client.RevokeConnection(e.ctx, geo, at); err != nil {
		t.Fatal(err)
	}
	if _, err := e.refresh(tok2.RefreshToken); !concur.IsPermanent(err) || asError(t, err).Code != 108 {
		t.Errorf("refresh after revoke: %v", err)
	}
	if _, err := e.client.GetUser(e.ctx, geo, at, users[0].ID, concur.UserQuery{}); !concur.IsUnauthorized(err) {
		t.Errorf("GetUser after revoke: %v", err)
	}
}

func TestSimRotationModes(t *testing.T) {
	for _, mode := range []concurtest.Rotation{concurtest.RotationStable, concurtest.RotationRotate, concurtest.RotationGrace} {
		t.Run(string(mode), func(t *testing.T) {
			e := newSimEnv(t, concurtest.Options{Rotation: mode, GraceWindow: time.Minute}, concur.Options{})
			old := concur.NewSecret(e.sim.NewRefreshToken(testClientID, testCompanyUUID))
			tok, err := e.refresh(old)
			if err != nil {
				t.Fatal(err)
			}
			current := e.sim.CurrentRefreshToken(testClientID, testCompanyUUID)
			if tok.RefreshToken.Reveal() != current {
				t.Fatal("the returned refresh token does not replace the presented one")
			}
			changed := !tok.RefreshToken.Equal(old)
			if changed != (mode != concurtest.RotationStable) {
				t.Errorf("changed = %v", changed)
			}
			switch mode {
			case concurtest.RotationRotate:
				if _, err := e.refresh(old); !concur.IsPermanent(err) {
					t.Errorf("old token after rotation: %v", err)
				}
			case concurtest.RotationGrace:
				if !e.sim.RefreshTokenValid(old.Reveal()) {
					t.Error("old token dead within the grace window")
				}
				e.sim.Clock.Advance(2 * time.Minute)
				if _, err := e.refresh(old); !concur.IsPermanent(err) {
					t.Errorf("old token after the grace window: %v", err)
				}
			}
			// The new one keeps working, and keeps being replaced.
			tok2, err := e.refresh(tok.RefreshToken)
			if err != nil || tok2.RefreshToken.Reveal() != e.sim.CurrentRefreshToken(testClientID, testCompanyUUID) {
				t.Fatalf("second refresh: %v", err)
			}
		})
	}
}

func TestSimPermanentErrors(t *testing.T) {
	e := newSimEnv(t, concurtest.Options{RequestTokenUses: 1}, concur.Options{})
	good := concur.NewSecret(e.sim.NewRefreshToken(testClientID, testCompanyUUID))
	check := func(name string, wantCode int, call func() error) {
		t.Helper()
		e.sim.ResetCounters()
		err := call()
		if !concur.IsPermanent(err) || asError(t, err).Code != wantCode {
			t.Errorf("%s: %v, want permanent code %d", name, err, wantCode)
		}
		if n := e.sim.Calls(concurtest.EndpointToken); n != 1 {
			t.Errorf("%s: %d token calls; permanent errors are not retried", name, n)
		}
		assertNoSecrets(t, name, err)
	}
	check("unknown refresh token", 108, func() error { _, err := e.refresh(concur.NewSecret(testRefreshToken)); return err })
	check("bad client secret", 64, func() error {
		wrong := concur.Credentials{ClientID: testClientID, ClientSecret: concur.NewSecret(testClientSecret + "x")}
		_, err := e.client.Refresh(e.ctx, e.sim.URL, wrong, good)
		return err
	})
	check("unknown request token", 5, func() error {
		_, err := e.client.ExchangeRequestToken(e.ctx, e.sim.URL, testCreds, testCompanyUUID, concur.NewSecret(testRequestToken))
		return err
	})
	rt := e.sim.NewRequestToken(testClientID, testCompanyUUID)
	if _, err := e.client.ExchangeRequestToken(e.ctx, e.sim.URL, testCreds, testCompanyUUID, concur.NewSecret(rt)); err != nil {
		t.Fatal(err)
	}
	check("used-up request token", 5, func() error {
		_, err := e.client.ExchangeRequestToken(e.ctx, e.sim.URL, testCreds, testCompanyUUID, concur.NewSecret(rt))
		return err
	})
	e.sim.SetCompanyEnabled(testClientID, testCompanyUUID, false)
	check("company not enabled", 53, func() error {
		rt := concur.NewSecret(e.sim.NewRequestToken(testClientID, testCompanyUUID))
		_, err := e.client.ExchangeRequestToken(e.ctx, e.sim.URL, testCreds, testCompanyUUID, rt)
		return err
	})
	e.sim.SetCompanyEnabled(
		testClientID, testCompanyUUID, true,
	)
	e.sim.SetClientEnabled(testClientID, false)
	check("client disabled", 59, func() error { _, err := e.refresh(good); return err })

	// 108 answered with 403 is still permanent.
	e403 := newSimEnv(t, concurtest.Options{RefreshErrorStatus: 403}, concur.Options{})
	_, err := e403.refresh(concur.NewSecret(testRefreshToken))
	if ce := asError(t, err); ce.StatusCode != 403 || ce.Code != 108 || ce.Class != concur.ClassPermanent {
		t.Errorf("108 as 403: %+v", ce)
	}
}

func TestSimTransientFaults(t *testing.T) {
	faults := map[string]concurtest.Fault{
		"500":         {Kind: concurtest.FaultStatus, Status: 500},
		"503":         {Kind: concurtest.FaultStatus, Status: 503},
		"429 now":     {Kind: concurtest.FaultStatus, Status: 429, RetryAfter: "0"},
		"drop":        {Kind: concurtest.FaultDrop},
		"malformed":   {Kind: concurtest.FaultMalformedJSON},
		"oversized":   {Kind: concurtest.FaultOversized},
		"slow answer": {Kind: concurtest.FaultDelay, Delay: 2 * time.Second},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			e := newSimEnv(t, concurtest.Options{}, concur.Options{Timeout: 200 * time.Millisecond, MaxBodyBytes: 64 << 10})
			refresh := concur.NewSecret(e.sim.NewRefreshToken(testClientID, testCompanyUUID))
			if f.Kind == concurtest.FaultMalformedJSON || f.Kind == concurtest.FaultOversized {
				// A 2xx from the token endpoint is never re-sent.
				e.sim.InjectFault(concurtest.EndpointToken, 2, f)
				_, err := e.refresh(refresh)
				if !concur.IsGrantOutcomeUnknown(err) || e.sim.GrantCalls("refresh_token") != 1 {
					t.Fatalf("garbled 2xx: %v after %d grants", err, e.sim.GrantCalls("refresh_token"))
				}
				e.sim.ClearFaults()
				e.sim.InjectFault(concurtest.EndpointUsers, 2, f)
				tok, err := e.refresh(refresh)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.client.GetUser(e.ctx, e.sim.URL, tok.AccessToken, e.sim.Users(testCompanyUUID)[0].ID, concur.UserQuery{}); err != nil {
					t.Errorf("identity with 2 faults: %v", err)
				}
				return
			}

			// Two faults, three attempts: success.
			e.sim.InjectFault(concurtest.EndpointToken, 2, f)
			tok, err := e.refresh(refresh)
			if err != nil {
				t.Fatalf("with 2 faults: %v", err)
			}
			if n := e.sim.GrantCalls("refresh_token"); n != 3 {
				t.Errorf("%d refresh grants, want 3", n)
			}

			// More faults than attempts: a transient error, after exactly MaxAttempts.
			e.sim.ResetCounters()
			e.sim.InjectFault(concurtest.EndpointToken, 5, f)
			start := time.Now()
			_, err = e.refresh(tok.RefreshToken)
			if concur.ClassOf(err) != concur.ClassTransient || e.sim.Calls(concurtest.EndpointToken) != fastRetry.MaxAttempts {
				t.Errorf("with 5 faults: %v after %d calls", err, e.sim.Calls(concurtest.EndpointToken))
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s", d)
			}
			assertNoSecrets(t, "fault error", err)

			// The same fault on Identity.
			e.sim.ClearFaults()
			e.sim.InjectFault(concurtest.EndpointUsers, 2, f)
			users := e.sim.Users(testCompanyUUID)
			if _, err := e.client.GetUser(e.ctx, e.sim.URL, tok.AccessToken, users[0].ID, concur.UserQuery{}); err != nil {
				t.Errorf("identity with 2 faults: %v", err)
			}
		})
	}
}

func TestSimRetryAfterBound(t *testing.T) {
	w := &waits{}
	e := newSimEnv(t, concurtest.Options{}, concur.Options{Wait: w.wait,
		Retry: concur.RetryPolicy{MaxAttempts: 5, MinBackoff: time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxElapsed: 5 * time.Minute}})
	refresh := concur.NewSecret(e.sim.NewRefreshToken(testClientID, testCompanyUUID))
	// Retry-After of an hour is beyond the budget: the call ends at once and says so.
	e.sim.InjectFault(concurtest.EndpointToken, 2, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 503, RetryAfter: "3600"})
	_, err := e.refresh(refresh)
	if ce := asError(t, err); !ce.HasRetryAfter || ce.RetryAfter != time.Hour || e.sim.GrantCalls("refresh_token") != 1 {
		t.Fatalf("err %+v after %d grants", ce, e.sim.GrantCalls("refresh_token"))
	}
	// An HTTP date in the simulator's clock, within the budget: waited in full.
	e.sim.ClearFaults()
	e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{
		Kind: concurtest.FaultStatus, Status: 429, RetryAfter: simEpoch.Add(time.Minute).Format("Mon, 02 Jan 2006 15:04:05 GMT"),
	})
	if _, err := e.refresh(refresh); err != nil {
		t.Fatal(err)
	}
	if got := w.got(); len(got) != 1 || got[0] != time.Minute {
		t.Errorf("waits %v, want one of a minute", got)
	}
}

func TestSimCode16(t *testing.T) {
	e := newSimEnv(t, concurtest.Options{DataCenters: []string{"us2", "eu2"}}, concur.Options{})
	e.sim.AddCompany(testCompanyUUID, "eu2")
	eu2 := e.sim.URLOf("eu2")

	tok := e.exchange(t, e.sim.URL) // sent to us2, redirected to eu2
	if tok.Geolocation != eu2 {
		t.Fatalf("geolocation %q, want %q", tok.Geolocation, eu2)
	}
	if n := e.sim.ErrorCount(16); n != 1 {
		t.Errorf("%d code-16 answers", n)
	}
	if _, err := e.client.Refresh(e.ctx, e.sim.URL, testCreds, tok.RefreshToken); err != nil {
		t.Errorf("refresh at the wrong data centre: %v", err)
	}

	// An allow-list that admits us2 only refuses to follow, and names eu2.
	us2, _ := url.Parse(e.sim.URL)
	strict := newClient(t, concur.Options{HTTPClient: e.sim.Client(), AllowedHosts: []string{"http://" + us2.Host}})
	_, err := strict.Refresh(e.ctx, e.sim.URL, testCreds, tok.RefreshToken)
	eu2URL, _ := url.Parse(eu2)
	if !concur.IsPermanent(err) || !strings.Contains(err.Error(), eu2URL.Host) {
		t.Fatalf("strict allow-list: %v", err)
	}
}

func TestSimUnauthorized(t *testing.T) {
	for _, status := range []int{401, 403} {
		e := newSimEnv(t, concurtest.Options{UnauthorizedStatus: status}, concur.Options{})
		tok := e.exchange(t, e.sim.URL)
		users := e.sim.Users(testCompanyUUID)
		e.sim.Clock.Advance(61 * time.Minute) // the access token has expired
		e.sim.ResetCounters()
		_, err := e.client.GetUser(e.ctx, e.sim.URL, tok.AccessToken, users[0].ID, concur.UserQuery{})
		if !concur.IsUnauthorized(err) || asError(t, err).StatusCode != status || e.sim.Calls(concurtest.EndpointUsers) != 1 {
			t.Errorf("%d: %v", status, err)
		}
		_, err = e.client.FindUsers(e.ctx, e.sim.URL, concur.NewSecret("not-a-token"),
			concur.UserFilter{Attribute: concur.FilterUserName, Value: "x"})
		if !concur.IsUnauthorized(err) {
			t.Errorf("%d: bogus token: %v", status, err)
		}
	}
}

func TestSimCallerCancelDuringDelay(t *testing.T) {
	e := newSimEnv(t, concurtest.Options{}, concur.Options{})
	e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultDelay, Delay: 3 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.client.Refresh(ctx, e.sim.URL, testCreds, concur.NewSecret(e.sim.NewRefreshToken(testClientID, testCompanyUUID)))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
}

// Under strict rotation, garbled 2xx answers must not cost the refresh
// token: what the body carries is kept, and a grant that got a 2xx is never
// sent again with the token it consumed (issue 10.3, 10.8). The simulator's
// own record says whether custody held.
func TestSimGarbledGrantAnswersKeepCustody(t *testing.T) {
	e := newSimEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate}, concur.Options{})
	refresh := concur.NewSecret(e.sim.NewRefreshToken(testClientID, testCompanyUUID))

	e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultWrongTypes})
	tok, err := e.refresh(refresh)
	if err != nil {
		t.Fatalf("wrong types: %v", err)
	}
	if cur := e.sim.CurrentRefreshToken(testClientID, testCompanyUUID); tok.RefreshToken.Reveal() != cur || tok.AccessToken.IsZero() {
		t.Fatalf("the rotated refresh token was not kept")
	}
	if len(tok.Warnings) != 4 || tok.Scope != "" || tok.Geolocation != "" {
		t.Errorf("warnings %q scope %q geolocation %q", tok.Warnings, tok.Scope, tok.Geolocation)
	}

	// Only the refresh token survives a garbled access token.
	e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultWrongTypes, Fields: []string{"access_token"}})
	tok, err = e.refresh(tok.RefreshToken)
	if err != nil || !tok.AccessToken.IsZero() || tok.RefreshToken.Reveal() != e.sim.CurrentRefreshToken(testClientID, testCompanyUUID) {
		t.Fatalf("refresh token only: %v", err)
	}

	e.sim.ResetCounters()
	e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultTruncate})
	_, err = e.refresh(tok.RefreshToken)
	if !concur.IsGrantOutcomeUnknown(err) || concur.RefusedForGood(err) || e.sim.GrantCalls("refresh_token") != 1 {
		t.Fatalf("truncated: %v after %d grants", err, e.sim.GrantCalls("refresh_token"))
	}
	if n := e.sim.DeadRefreshTokenUses(); n != 0 {
		t.Fatalf("the client presented %d dead refresh tokens", n)
	}
	assertNoSecrets(t, "outcome unknown", err)
}

// Each code of the table, answered by the simulator in Concur's shape,
// reaches the caller with its code and the table's verdict.
func TestSimEveryOAuthCode(t *testing.T) {
	e := newSimEnv(t, concurtest.Options{}, concur.Options{})
	refresh := concur.NewSecret(e.sim.NewRefreshToken(testClientID, testCompanyUUID))
	for _, row := range concur.OAuthCodes() {
		e.sim.ClearFaults()
		e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultOAuthError, Code: row.Code})
		_, err := e.refresh(refresh)
		if row.Class == concur.ClassTransient {
			if err != nil {
				t.Errorf("code %d: %v; want a retry that succeeds", row.Code, err)
			}
			continue
		}
		ce := asError(t, err)
		if ce.Code != row.Code || ce.ErrorCode != row.Error || concur.RefusedForGood(err) != row.RefusedForGood {
			t.Errorf("code %d: %+v, RefusedForGood %v", row.Code, ce, concur.RefusedForGood(err))
		}
	}
}

func TestSimIDTokenSubject(t *testing.T) {
	e := newSimEnv(t, concurtest.Options{}, concur.Options{})
	tok := e.exchange(t, e.sim.URL)
	if tok.Subject != testCompanyUUID || len(tok.Warnings) != 0 {
		t.Fatalf("subject %q warnings %q", tok.Subject, tok.Warnings)
	}
	const other = "11111111-2222-4333-8444-555555555555"
	e.sim.SetIDTokenSubject(testCompanyUUID, other)
	tok, err := e.refresh(tok.RefreshToken)
	if err != nil || tok.Subject != other {
		t.Fatalf("subject %q, %v", tok.Subject, err)
	}
}

func TestSimDeprecationNotice(t *testing.T) {
	var got []concur.DeprecationNotice
	e := newSimEnv(t, concurtest.Options{}, concur.Options{OnDeprecation: func(n concur.DeprecationNotice) { got = append(got, n) }})
	tok := e.exchange(t, e.sim.URL)
	if len(got) != 0 {
		t.Fatalf("notices without headers: %+v", got)
	}
	e.sim.SetDeprecation(concurtest.EndpointUsers, "Identity v4 is deprecated; use v4.1", "Wed, 30 Dec 2026 23:59:59 GMT")
	users := e.sim.Users(testCompanyUUID)
	if _, err := e.client.GetUser(e.ctx, e.sim.URL, tok.AccessToken, users[0].ID, concur.UserQuery{}); err != nil {
		t.Fatal(err)
	}
	want := concur.DeprecationNotice{Op: "get user", Path: "/profile/identity/v4/Users/" + users[0].ID,
		Warning: "Identity v4 is deprecated; use v4.1", Sunset: "Wed, 30 Dec 2026 23:59:59 GMT"}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("notices %+v", got)
	}
}
