package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Fault-matrix cases of issue 10 (refresh-token custody), all under strict
// rotation: a token presented twice, or a grant whose answer is dropped,
// would leave the engine with a dead refresh token, which tokenVerdict and
// the simulator's 108 count would show.

// holdTokenAnswer: Concur processes the next token call and holds its
// answer 300 ms, telling m.processed meanwhile.
func holdTokenAnswer(m *mx) {
	m.fault(tokenEP, 1, concurtest.Fault{Kind: concurtest.FaultHold, Delay: 300 * time.Millisecond, Processed: m.processed})
}

// callerLeaves sends the request and gives up as soon as Concur has
// processed the token call; then waits for the engine to finish it.
func callerLeaves(op logical.Operation, path string, data func(*mx) map[string]any) func(*mx) outcome {
	return func(m *mx) outcome {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-m.processed:
				cancel()
			case <-ctx.Done():
			}
		}()
		var d map[string]any
		if data != nil {
			d = data(m)
		}
		resp, err := m.b.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Data: d, Storage: m.st})
		m.b.idle()
		return outcomeOf(resp, err)
	}
}

func (m *mx) bootstrapData(field string) func(*mx) map[string]any {
	return func(m *mx) map[string]any {
		d := m.baseConfig()
		if field == "request_token" {
			d[field] = m.reqTok
		} else {
			d[field] = m.seedRT
		}
		return d
	}
}

// replaceInstance is a plugin reload or a leader change: Vault cleans the
// old instance, and a new one on the same storage takes over.
func (m *mx) replaceInstance() {
	m.b.Cleanup(context.Background())
	m.b = m.newInstance()
}

// replaceWhileGrantInFlight: the old instance's grant is held at Concur when
// the new instance is asked for a renewal; afterwards the old one goes.
func replaceWhileGrantInFlight(m *mx) outcome {
	old := m.b
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = old.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "rotate", Storage: m.st})
	}()
	<-m.processed
	m.b = m.newInstance()
	o := opCredsMinTTL(m)
	<-done
	old.Cleanup(context.Background())
	_ = opCreds(m) // a later reader gets what the old instance stored
	return o
}

// cleanDuringPeriodic: Vault cleans the instance while its periodic grant
// is held at Concur; a new instance serves afterwards.
func cleanDuringPeriodic(m *mx) outcome {
	done := make(chan struct{})
	go func() { defer close(done); m.perr = m.tick() }()
	<-m.processed
	m.replaceInstance()
	<-done
	return opCreds(m)
}

// plantMarker leaves a marker as an old instance would have.
func plantMarker(age time.Duration) func(*mx) {
	return func(m *mx) {
		var st companyEntry
		_, _ = getJSON(context.Background(), m.storage.Storage, defaultCompanyKey, &st)
		st.Token.Grant = &grantMarker{RefreshToken: tokenFingerprint(st.Token.RefreshToken), Until: m.b.now().Add(-age), Instance: "old-instance"}
		_ = putJSON(context.Background(), m.storage.Storage, defaultCompanyKey, &st)
		m.b = m.newInstance()
	}
}

// concurProcessedLostAnswer: an old instance's grant reached Concur (which
// rotated the token) and its answer was lost.
func concurProcessedLostAnswer(m *mx) {
	m.fault(tokenEP, 1, dropAfter)
	_, _ = m.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "rotate", Storage: m.st})
	m.clearAll()
}

func withoutIdentityScopes(m *mx) { m.sim.AddClient(testClientID, testClientSecret, "openid") }

func repeat(n int, between time.Duration, op func(*mx) outcome) func(*mx) outcome {
	return func(m *mx) outcome {
		var o outcome
		for range n {
			m.clock.Advance(between)
			o = op(m)
		}
		return o
	}
}

func ticks(n int, between time.Duration) func(*mx) outcome {
	return func(m *mx) outcome {
		for range n {
			m.clock.Advance(between)
			if err := m.tick(); err != nil {
				m.perr = err
			}
		}
		return opCreds(m)
	}
}

// servesAgain: once the fault is gone, creds are served without a warning.
func servesAgain(m *mx) { m.clearAll(); mustCode(m, opCreds(m), 200, false) }

func custodyCases() []matrixCase {
	rotate := concurtest.Options{Rotation: concurtest.RotationRotate}
	short := rotate
	short.AccessTokenTTL = 10 * time.Minute
	stuck := rotate
	stuck.RefreshTokenTTL = 3 * 24 * time.Hour
	gaveUp := []string{"stopped waiting"}
	replaced := func(m *mx) {
		if m.storedToken().RefreshToken == m.before {
			m.t.Errorf("the grant did not store its result")
		}
	}
	return []matrixCase{
		// Point 1: grants outlive their caller.
		{name: "rotate/caller-gives-up-answer-held", op: "rotate (caller gives up)", fault: "Concur rotates, holds the answer; the caller leaves",
			sim: rotate, arrange: fresh, inject: holdTokenAnswer, act: callerLeaves(logical.UpdateOperation, "rotate", nil),
			want: want{code: 500, says: gaveUp}, check: all(grantsMade(1), replaced)},
		{
			name:    "creds-expired/caller-gives-up-answer-held",
			op:      "creds (token expired, caller gives up)",
			fault:   "Concur rotates, holds the answer; the caller leaves",
			sim:     rotate,
			arrange: expired,
			inject:  holdTokenAnswer,
			act:     callerLeaves(logical.ReadOperation, "creds", nil),
			want:    want{code: 500, says: gaveUp},
			check:   all(grantsMade(1), replaced),
		},
		{name: "bootstrap-request-token/caller-gives-up-answer-held", op: "config write request_token (caller gives up)",
			fault: "Concur issues tokens, holds the answer; the caller leaves", sim: rotate, noBootstrap: true, inject: holdTokenAnswer,
			act: func(m *mx) outcome {
				return callerLeaves(logical.CreateOperation, "config", m.bootstrapData("request_token"))(m)
			},
			want: want{code: 500, says: []string{"canceled"}}},
		{name: "bootstrap-refresh-token/caller-gives-up-answer-held", op: "config write refresh_token (caller gives up)",
			fault: "Concur rotates, holds the answer; the caller leaves", sim: rotate, noBootstrap: true, inject: holdTokenAnswer,
			act: func(m *mx) outcome {
				return callerLeaves(logical.CreateOperation, "config", m.bootstrapData("refresh_token"))(m)
			},
			want: want{code: 500, says: []string{"canceled"}}, resume: servesAgain},

		// Point 2: an instance has a lifetime.
		{
			name:    "clean/periodic-grant-in-flight",
			op:      "periodic renewal, Clean meanwhile",
			fault:   "Concur holds the answer; Vault cleans the backend (reload, step-down)",
			sim:     rotate,
			arrange: due,
			inject:  holdTokenAnswer,
			act:     cleanDuringPeriodic,
			want:    want{code: 200, warn: false},
			check:   all(grantsMade(1), replaced),
			resume:  servesAgain,
		},
		{
			name:    "reload/new-instance-while-old-rotates",
			op:      "creds min_ttl=55m on a new instance",
			fault:   "the old instance's grant is held at Concur",
			sim:     rotate,
			arrange: fresh,
			inject:  holdTokenAnswer,
			act:     replaceWhileGrantInFlight,
			want:    want{code: 200, warn: true, says: []string{"in flight"}},
			check:   all(grantsMade(1), replaced),
			resume:  func(m *mx) { m.clearAll(); mustCode(m, opRotate(m), 200, false); mustCode(m, opCreds(m), 200, false) },
		},
		{
			name:    "reload/expired-marker-token-alive",
			op:      "periodic renewal on a new instance",
			fault:   "an old instance's marker expired; its grant never reached Concur",
			sim:     rotate,
			arrange: due,
			inject:  plantMarker(time.Second),
			act:     opPeriodic,
			want:    want{code: 200, warn: false},
			check:   all(grantsMade(1), replaced),
		},
		{
			name:    "reload/expired-marker-answer-lost",
			op:      "periodic renewal on a new instance",
			fault:   "an old instance's grant was processed, its answer lost, its marker expired",
			sim:     rotate,
			arrange: due,
			inject:  all(concurProcessedLostAnswer, plantMarker(time.Second)),
			act:     opPeriodic,
			want:    want{code: 503, says: []string{"108", "concur/config"}},
			lost:    true,
			check:   statusIs(statusNeedsBootstrap),
			resume:  rebootstrap,
			note: "the old instance lost the answer (inherent); the new one presents the token once, " +
				"Concur refuses it with code 108: needs_bootstrap",
		},
		{name: "storage/marker-write-refused", op: "creds min_ttl=55m", fault: "storage refuses the write-ahead marker",
			sim: rotate, arrange: fresh, inject: func(m *mx) { m.storage.set(1, false) }, act: opCredsMinTTL,
			want: want{code: 200, warn: true, says: []string{"not calling Concur"}}, check: grantsMade(0)},

		// Point 5: no read drives unbounded grants.
		{name: "profile/403-missing-scope", op: "profile read x10", fault: "the app has no Identity scope: every read is refused (403)",
			sim: rotate, arrange: func(m *mx) { withoutIdentityScopes(m); _ = opRotate(m); m.grants0 = m.sim.GrantCalls("refresh_token") },
			act: repeat(10, 10*time.Second, opProfile), want: want{code: 403, says: []string{"identity.user.core.read"}}, check: grantsMade(1),
			resume: func(m *mx) {
				m.sim.AddClient(testClientID, testClientSecret)
				m.clock.Advance(rejectedRenewalEvery)
				mustCode(m, opProfile(m), 200, false)
			}},
		{name: "creds-min-ttl/10-minute-tokens", op: "creds min_ttl=55m x20", fault: "Concur issues 10-minute access tokens",
			sim: short, act: repeat(20, 10*time.Second, opCredsMinTTL),
			want: want{code: 200, warn: true, says: []string{"less than asked for"}}, check: grantsMade(0),
			resume: func(m *mx) { mustCode(m, opCreds(m), 200, false) }},
		{
			name:   "periodic/refresh-expiry-not-moved",
			op:     "periodic renewal x180",
			fault:  "Concur's refresh tokens last 3 days (inside the 7-day margin)",
			sim:    stuck,
			act:    ticks(180, time.Minute),
			want:   want{code: 200, warn: true, says: []string{"did not move"}},
			check:  grantsMade(4),
			resume: func(m *mx) { mustCode(m, opCreds(m), 200, true) },
			note:   "one renewal for the refresh token's sake, then one per access-token lifetime (3 in 3 hours)",
		},
		// Point 6: needs_bootstrap only when Concur said so, with its code.
		{
			name:    "creds-expired/gateway-403-uncoded",
			op:      "creds (token expired)",
			fault:   "token endpoint 403 HTML page from a gateway (no OAuth code)",
			sim:     rotate,
			door:    true,
			arrange: expired,
			inject:  doorFault(tokenPath, 10, answer(403, "text/html", "<html>Forbidden</html>")),
			act:     opCreds,
			want:    want{code: 502, says: []string{"403"}},
			check:   statusIs(statusDegraded),
		},
		{name: "periodic/gateway-404-uncoded", op: "periodic renewal", fault: "token endpoint 404 from a gateway (no OAuth code)",
			sim: rotate, door: true, arrange: due, inject: doorFault(tokenPath, 10, answer(404, "application/json", `{"error":{"id":"NOT_FOUND"}}`)),
			act: opPeriodic, want: want{code: 200, warn: true, says: []string{"404"}}, check: statusIs(statusDegraded)},
		{name: "periodic/401-without-oauth-body", op: "periodic renewal", fault: "token endpoint 401 with an empty body",
			sim: rotate, door: true, arrange: due, inject: doorFault(tokenPath, 10, answer(401, "text/plain", "")),
			act: opPeriodic, want: want{code: 200, warn: true, says: []string{"401"}}, check: statusIs(statusDegraded)},
		{name: "periodic/coded-refusal-app-disabled", op: "periodic renewal", fault: "Concur refuses the app with its code (59, client disabled)",
			sim: rotate, arrange: due, inject: func(m *mx) { m.sim.SetClientEnabled(testClientID, false) }, act: opPeriodic,
			want:   want{code: 200, warn: true, says: []string{"59", "client_id or client_secret"}},
			check:  all(statusIs(statusDegraded), noTokenCallAfter(time.Hour)),
			resume: func(m *mx) { m.sim.SetClientEnabled(testClientID, true); mustCode(m, opRotate(m), 200, false) },
			note: "a refusal of the app's own credentials keeps the company's tokens (degraded, not needs_bootstrap) and pauses " +
				"background token calls of every company; rotate or a config write retries once the operator fixed the cause"},
		{name: "periodic/429-retry-after-30m", op: "periodic renewal", fault: "token endpoint 429, Retry-After: 1800",
			sim: rotate, arrange: due, inject: simFault(tokenEP, 10, status(429, "1800")), act: opPeriodic,
			want: want{code: 200, warn: true, says: []string{"429"}}, check: noTokenCallAfter(25 * time.Minute)},
	}
}
