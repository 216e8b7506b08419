package backend

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// The fault matrix: simulator (and storage, and clock) faults crossed with
// engine operations. Every case bootstraps a fresh mount, arranges the
// token's age, injects one fault, performs one operation and checks
//   - what the caller gets (status, warning, what the message names),
//   - that the stored refresh token is intact, or replaced by Concur's newer
//     one, or (while storage refuses writes) held in memory to be written
//     first — never lost, except where Concur itself made that inevitable
//     (a rotation whose answer never arrived; a token left to expire),
//   - that service resumes once the fault clears.
// Outcomes go to docs/reliability.md (make reliability).

// mx is one case's world.
type mx struct {
	*testEnv
	t       *caseT
	baseURL string
	st      *readFailStorage
	door    *frontDoor
	door2   *frontDoor
	user    concurtest.User
	reqTok  string // request token for bootstrap-by-request-token cases
	seedRT  string // refresh token for bootstrap-by-refresh-token cases
	before  string // stored refresh token before the fault
	perr    error  // periodic's error, for periodic cases
	grants0 int    // refresh grants before the operation
	skew    atomic.Int64
	// deadline times attempts out while a timeout fault is on.
	deadline *deadlineTransport
	// processed hears from the simulator (FaultHold) that Concur processed a token call.
	processed chan struct{}
}

func (m *mx) req(op logical.Operation, path string, data map[string]any) outcome {
	resp, err := m.b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Data: data, Storage: m.st})
	return outcomeOf(resp, err)
}

func (m *mx) tick() error {
	_, err := m.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: m.st})
	return err
}

func (m *mx) fault(ep concurtest.Endpoint, n int, f concurtest.Fault) {
	m.sim.InjectFault(ep, n, f)
}

func (m *mx) clearAll() {
	m.deadline.timeout.Store(0)
	m.sim.ClearFaults()
	m.storage.set(0, false)
	m.st.failGets.Store(0)
	if m.door != nil {
		m.door.clear()
	}
	if m.door2 != nil {
		m.door2.clear()
	}
}

// baseConfig names the front door as base_url when there is one.
func (m *mx) baseConfig() map[string]any {
	d := m.testEnv.baseConfig()
	d["base_url"] = m.baseURL
	return d
}

// caseT collects a case's failed expectations, so that a case waiting for a
// product fix can be skipped without counting as failed.
type caseT struct {
	mu       sync.Mutex
	problems []string
}

func (c *caseT) Helper() {}

func (c *caseT) Errorf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *caseT) failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.problems) > 0
}

// verdict reports the collected problems on t. A case marked as a product
// bug (skip) is skipped while it fails, and must lose its mark once it passes.
func (c *caseT) verdict(t *testing.T, skip string, rec *reliabilityRecord) {
	switch {
	case skip != "" && c.failed():
		rec.Note = skip + " (observed: " + shortText(c.problems[0]) + ")"
		t.Skipf("%s\nobserved: %s", skip, strings.Join(c.problems, "\n"))
	case skip != "":
		t.Errorf("the case is marked as a product bug (%s) but passes: remove the mark", skip)
	case c.failed():
		for _, p := range c.problems {
			t.Error(p)
		}
	}
}

func (m *mx) status() string {
	o := m.req(logical.ReadOperation, "config", nil)
	if o.code != 200 {
		return "unreadable"
	}
	return o.data["status"].(string)
}

// Operations.
var (
	opCreds       = func(m *mx) outcome { return m.req(logical.ReadOperation, "creds", nil) }
	opCredsMinTTL = func(m *mx) outcome {
		return m.req(logical.ReadOperation, "creds", map[string]any{"min_ttl": "55m"})
	}
	// opPeriodic runs Vault's periodic tick; the caller's view is a creds read after it.
	opPeriodic = func(m *mx) outcome { m.perr = m.tick(); return opCreds(m) }
	opRotate   = func(m *mx) outcome { return m.req(logical.UpdateOperation, "rotate", nil) }
	opProfile  = func(m *mx) outcome { return m.req(logical.ReadOperation, "profile/"+m.user.ID, nil) }
	opSearch   = func(m *mx) outcome {
		return m.req(logical.ReadOperation, "profile", map[string]any{"user_name": m.user.UserName})
	}
	opBootstrapRequest = func(m *mx) outcome {
		d := m.baseConfig()
		d["request_token"] = m.reqTok
		return m.req(logical.CreateOperation, "config", d)
	}
	opBootstrapRefresh = func(m *mx) outcome {
		d := m.baseConfig()
		d["refresh_token"] = m.seedRT
		return m.req(logical.CreateOperation, "config", d)
	}
	opDeleteRevoke = func(m *mx) outcome {
		return m.req(logical.DeleteOperation, "config", map[string]any{"revoke": true})
	}
	opSettings = func(m *mx) outcome {
		return m.req(logical.UpdateOperation, "config", map[string]any{"refresh_margin": "20m"})
	}
)

// Token ages.
func atAge(d time.Duration) func(*mx) { return func(m *mx) { m.clock.Advance(d) } }

var (
	fresh   = atAge(10 * time.Minute) // 50 minutes left: only min_ttl or rotate call Concur
	due     = atAge(52 * time.Minute) // inside the 10-minute margin: periodic renews
	expired = atAge(61 * time.Minute) // a read must renew first
)

// Simulator faults.
func simFault(ep concurtest.Endpoint, n int, f concurtest.Fault) func(*mx) {
	return func(m *mx) { m.fault(ep, n, f) }
}

func status(code int, retryAfter string) concurtest.Fault {
	return concurtest.Fault{Kind: concurtest.FaultStatus, Status: code, RetryAfter: retryAfter}
}

var (
	tokenEP = concurtest.EndpointToken
	usersEP = concurtest.EndpointUsers
	connsEP = concurtest.EndpointConnections

	delay     = concurtest.Fault{Kind: concurtest.FaultDelay, Delay: 10 * time.Second}
	drop      = concurtest.Fault{Kind: concurtest.FaultDrop}
	dropAfter = concurtest.Fault{Kind: concurtest.FaultDropAfter}
	malformed = concurtest.Fault{Kind: concurtest.FaultMalformedJSON}
	oversized = concurtest.Fault{Kind: concurtest.FaultOversized, Size: 3 << 20}
)

// Front-door faults.
func doorFault(path string, n int, fn func(*frontDoor, http.ResponseWriter, *http.Request)) func(*mx) {
	return func(m *mx) { m.door.next(path, n, fn) }
}

const (
	tokenPath = "/oauth2/v0/token"
	usersPath = "/profile/identity/v4/Users"
	htmlPage  = "<html><head><title>502 Bad Gateway</title></head><body>upstream unavailable</body></html>"
)

// want is what the caller must get.
type want struct {
	code int
	warn bool     // a warning must (true) or must not (false) come with a 200
	says []string // the message or warning names these
}

type matrixCase struct {
	name, op, fault string
	sim             concurtest.Options
	door            bool          // talk to Concur through the front door
	timeout         time.Duration // per-attempt deadline while the fault is on (default: the client's 30 s)
	noBootstrap     bool          // the operation is itself the bootstrap
	arrange         func(*mx)
	inject          func(*mx)
	act             func(*mx) outcome
	want            want
	lost            bool      // the refresh token is lost, and Concur alone made it so
	check           func(*mx) // further assertions right after the operation
	resume          func(*mx) // default: clear, wait out any backoff, redo the operation
	skip            string    // product bug awaiting a fix (see the report)
	note            string    // remark for the report
}

func caseNames(cs []matrixCase) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// Checks used by several cases.

func noTokenCallAfter(d time.Duration) func(*mx) {
	return func(m *mx) {
		calls := m.sim.Calls(tokenEP)
		m.clock.Advance(d)
		_ = m.tick()
		o := opCreds(m)
		if m.sim.Calls(tokenEP) != calls {
			m.t.Errorf("Concur was called inside the backoff window (%s later)", d)
		}
		if o.code != 200 && o.code != 502 {
			m.t.Errorf("creds inside the backoff window: %v %s", o, o.msg)
		}
	}
}

func statusIs(s string) func(*mx) {
	return func(m *mx) {
		if got := m.status(); got != s {
			m.t.Errorf("config status %q, want %q", got, s)
		}
	}
}

func grantsMade(n int) func(*mx) {
	return func(m *mx) {
		if got := m.sim.GrantCalls("refresh_token") - m.grants0; got != n {
			m.t.Errorf("refresh grants during the operation: %d, want %d", got, n)
		}
	}
}

func stepEngineClock(d time.Duration) func(*mx) {
	return func(m *mx) { m.skew.Add(int64(d)) }
}

func all(fs ...func(*mx)) func(*mx) {
	return func(m *mx) {
		for _, f := range fs {
			f(m)
		}
	}
}

func faultMatrixCases() []matrixCase {
	rotate := concurtest.Options{Rotation: concurtest.RotationRotate}
	grace := concurtest.Options{Rotation: concurtest.RotationGrace}
	stable := concurtest.Options{Rotation: concurtest.RotationStable}
	short := 500 * time.Millisecond

	cs := []matrixCase{
		// creds with an expired access token: the read itself must renew.
		{name: "creds-expired/429-no-retry-after", op: "creds (token expired)", fault: "token endpoint 429, no Retry-After",
			sim: rotate, arrange: expired, inject: simFault(tokenEP, 10, status(429, "")), act: opCreds,
			want: want{code: 429, says: []string{"429"}}, check: statusIs(statusDegraded)},
		{name: "creds-expired/429-retry-after-seconds", op: "creds (token expired)", fault: "token endpoint 429, Retry-After: 120",
			sim: rotate, arrange: expired, inject: simFault(tokenEP, 10, status(429, "120")), act: opCreds,
			want: want{code: 429, says: []string{"429"}}, check: noTokenCallAfter(100 * time.Second)},
		{name: "creds-expired/429-retry-after-date", op: "creds (token expired)", fault: "token endpoint 429, Retry-After: HTTP date +3 min",
			sim: rotate, arrange: expired,
			inject: func(m *mx) {
				m.fault(tokenEP, 10, status(429, m.clock.Now().Add(3*time.Minute).UTC().Format(http.TimeFormat)))
			},
			act: opCreds, want: want{code: 429, says: []string{"429"}}, check: noTokenCallAfter(150 * time.Second)},
		{name: "creds-expired/500", op: "creds (token expired)", fault: "token endpoint 500",
			sim: rotate, arrange: expired, inject: simFault(tokenEP, 10, status(500, "")), act: opCreds,
			want: want{code: 502, says: []string{"500", "correlation id"}}},
		{name: "creds-expired/503", op: "creds (token expired)", fault: "token endpoint 503",
			sim: rotate, arrange: expired, inject: simFault(tokenEP, 10, status(503, "")), act: opCreds,
			want: want{code: 502, says: []string{"503"}}},
		{name: "creds-expired/timeout", op: "creds (token expired)", fault: "token endpoint slower than the per-attempt timeout",
			sim: rotate, timeout: short, arrange: expired, inject: simFault(tokenEP, 10, delay), act: opCreds,
			want: want{code: 504, says: []string{"no response"}}},
		{name: "creds-expired/connection-dropped", op: "creds (token expired)", fault: "token endpoint drops the connection",
			sim: rotate, arrange: expired, inject: simFault(tokenEP, 10, drop), act: opCreds,
			want: want{code: 502, says: []string{"no response"}}},
		{name: "creds-expired/malformed-json", op: "creds (token expired)", fault: "200 with truncated JSON",
			sim: rotate, arrange: expired, inject: simFault(tokenEP, 10, malformed), act: opCreds,
			want: want{code: 502, says: []string{"malformed token response"}}},
		{name: "creds-expired/oversized-body", op: "creds (token expired)", fault: "200 with a 3 MiB body",
			sim: rotate, arrange: expired, inject: simFault(tokenEP, 10, oversized), act: opCreds,
			want: want{code: 502, says: []string{"exceeds the limit"}}},
		{name: "creds-expired/html-502-from-gateway", op: "creds (token expired)", fault: "502 text/html page from a gateway",
			sim: rotate, door: true, arrange: expired, inject: doorFault(tokenPath, 10, answer(502, "text/html", htmlPage)), act: opCreds,
			want: want{code: 502, says: []string{"HTTP 502"}}},
		{name: "creds-expired/html-200", op: "creds (token expired)", fault: "200 text/html page instead of JSON",
			sim: rotate, door: true, arrange: expired, inject: doorFault(tokenPath, 10, answer(200, "text/html", htmlPage)), act: opCreds,
			want: want{code: 502, says: []string{"malformed token response"}}},
		{name: "creds-expired/slow-body", op: "creds (token expired)", fault: "headers sent, body stalls past the timeout (grant done each time)",
			sim: grace, door: true, timeout: short, arrange: expired, inject: doorFault(tokenPath, 10, slowBody(10*time.Second)), act: opCreds,
			want: want{code: 502, says: []string{"reading response body"}}},
		{name: "creds-expired/redirect-loop-code16", op: "creds (token expired)", fault: "code 16 from A to B and from B back to A",
			sim: rotate, door: true, arrange: expired,
			inject: func(m *mx) {
				m.door.next(tokenPath, 10, code16(m.door2.URL))
				m.door2.next(tokenPath, 10, code16(m.door.URL))
			},
			act: opCreds, want: want{code: 502, says: []string{"redirect loop"}}, check: statusIs(statusDegraded),
			note: "a redirect loop is trouble on the way, not a refused token: status degraded, renewal backs off and resumes by itself"},

		// One transient fault, absorbed by the client's retry: the caller never notices.
		{name: "creds-expired/one-503-retried", op: "creds (token expired)", fault: "one 503, then normal",
			sim: rotate, arrange: expired, inject: simFault(tokenEP, 1, status(503, "")), act: opCreds,
			want: want{code: 200, warn: false}, check: grantsMade(2)},
		{name: "creds-expired/one-drop-retried", op: "creds (token expired)", fault: "one dropped connection (nothing done), then normal",
			sim: rotate, arrange: expired, inject: simFault(tokenEP, 1, drop), act: opCreds,
			want: want{code: 200, warn: false}, check: grantsMade(2)},
		{name: "creds-expired/one-malformed-not-resent", op: "creds (token expired)", fault: "one truncated JSON body, then normal",
			sim: rotate, arrange: expired, inject: simFault(tokenEP, 1, malformed), act: opCreds,
			want: want{code: 502, says: []string{"grant outcome unknown"}}, check: grantsMade(1),
			note: "a 2xx means the grant happened: it is never re-sent with the token it may have consumed"},
		{name: "creds-expired/one-429-retry-after-0", op: "creds (token expired)", fault: "one 429 with Retry-After: 0, then normal",
			sim: rotate, arrange: expired, inject: simFault(tokenEP, 1, status(429, "0")), act: opCreds,
			want: want{code: 200, warn: false}, check: grantsMade(2)},
		{name: "creds-expired/clock-jump-forward-2h", op: "creds (token expired)", fault: "clock jumps forward 2 hours",
			sim: rotate, inject: atAge(2 * time.Hour), act: opCreds,
			want: want{code: 200, warn: false}, check: grantsMade(1)},

		// The periodic renewal, due but with a still-valid token: readers are served, with a warning.
		{name: "periodic/503", op: "periodic renewal", fault: "token endpoint 503",
			sim: rotate, arrange: due, inject: simFault(tokenEP, 10, status(503, "")), act: opPeriodic,
			want: want{code: 200, warn: true, says: []string{"503"}}, check: all(statusIs(statusDegraded), noTokenCallAfter(10*time.Second))},
		{name: "periodic/429-retry-after", op: "periodic renewal", fault: "token endpoint 429, Retry-After: 240",
			sim: rotate, arrange: due, inject: simFault(tokenEP, 10, status(429, "240")), act: opPeriodic,
			want: want{code: 200, warn: true, says: []string{"429"}}, check: noTokenCallAfter(230 * time.Second)},
		{name: "periodic/timeout", op: "periodic renewal", fault: "token endpoint slower than the per-attempt timeout",
			sim: rotate, timeout: short, arrange: due, inject: simFault(tokenEP, 10, delay), act: opPeriodic,
			want: want{code: 200, warn: true, says: []string{"no response"}}},
		{name: "periodic/connection-dropped", op: "periodic renewal", fault: "token endpoint drops the connection",
			sim: rotate, arrange: due, inject: simFault(tokenEP, 10, drop), act: opPeriodic,
			want: want{code: 200, warn: true, says: []string{"no response"}}},
		{name: "periodic/malformed-json", op: "periodic renewal", fault: "200 with truncated JSON",
			sim: rotate, arrange: due, inject: simFault(tokenEP, 10, malformed), act: opPeriodic,
			want: want{code: 200, warn: true, says: []string{"malformed"}}},
		{name: "periodic/oversized-body", op: "periodic renewal", fault: "200 with a 3 MiB body",
			sim: rotate, arrange: due, inject: simFault(tokenEP, 10, oversized), act: opPeriodic,
			want: want{code: 200, warn: true, says: []string{"exceeds the limit"}}},
		{name: "periodic/json-labelled-text-plain", op: "periodic renewal", fault: "200 JSON with Content-Type text/plain",
			sim: rotate, door: true, arrange: due, inject: doorFault(tokenPath, 1, relabel("text/plain; charset=iso-8859-1")), act: opPeriodic,
			want: want{code: 200, warn: false}, check: grantsMade(1)},
		{name: "periodic/slow-body-once-grace", op: "periodic renewal", fault: "one answer stalls mid-body after the grant (grace rotation)",
			sim: grace, door: true, timeout: short, arrange: due, inject: doorFault(tokenPath, 1, slowBody(10*time.Second)), act: opPeriodic,
			want: want{code: 200, warn: true, says: []string{"grant outcome unknown"}}, check: grantsMade(1),
			note: "the 2xx status arrived, so the grant is not re-sent within the call; the still-valid token is served"},
		{name: "periodic/drop-after-grant-grace", op: "periodic renewal", fault: "Concur rotates, then drops the connection (grace rotation)",
			sim: grace, arrange: due, inject: simFault(tokenEP, 1, dropAfter), act: opPeriodic,
			want: want{code: 200, warn: false}, check: grantsMade(2)},
		{name: "periodic/drop-after-grant-stable", op: "periodic renewal", fault: "Concur slides the token, then drops the connection (stable)",
			sim: stable, arrange: due, inject: simFault(tokenEP, 1, dropAfter), act: opPeriodic,
			want: want{code: 200, warn: false}, check: grantsMade(2)},
		{
			name:    "periodic/drop-after-grant-strict-rotation",
			op:      "periodic renewal",
			fault:   "Concur rotates (old token dies at once), then drops the connection",
			sim:     rotate,
			arrange: due,
			inject:  simFault(tokenEP, 1, dropAfter),
			act:     opPeriodic,
			want:    want{code: 503, says: []string{"108", "concur/config"}},
			lost:    true,
			check: all(statusIs(statusNeedsBootstrap), func(m *mx) {
				calls := m.sim.Calls(tokenEP)
				m.clock.Advance(time.Hour)
				_ = m.tick()
				if m.sim.Calls(tokenEP) != calls {
					m.t.Errorf("the engine kept calling Concur with a dead refresh token")
				}
			}),
			resume: rebootstrap,
		},
		{name: "periodic/rotation-switches-stable-to-rotate", op: "periodic renewal", fault: "Concur starts rotating refresh tokens",
			sim: stable, arrange: due, inject: func(m *mx) { m.sim.SetRotation(concurtest.RotationRotate) }, act: opPeriodic,
			want: want{code: 200, warn: false}, check: func(m *mx) {
				if m.storedToken().RefreshToken == m.before {
					m.t.Errorf("the rotated refresh token was not adopted")
				}
			}},
		{name: "periodic/clock-jump-forward-near-refresh-expiry", op: "periodic renewal", fault: "clock jumps forward 5 months 25 days",
			sim: rotate, inject: func(m *mx) { m.clock.Set(m.clock.Now().AddDate(0, 5, 25)) }, act: opPeriodic,
			want: want{code: 200, warn: false}, check: func(m *mx) {
				if exp := m.storedToken().RefreshExpiresAt; exp.Before(m.clock.Now().AddDate(0, 5, 0)) {
					m.t.Errorf("refresh token expiry %s did not slide forward", exp)
				}
			}},
		{
			name:   "periodic/clock-jump-past-refresh-expiry",
			op:     "periodic renewal",
			fault:  "clock jumps forward 7 months (refresh token expired meanwhile)",
			sim:    rotate,
			inject: func(m *mx) { m.clock.Set(m.clock.Now().AddDate(0, 7, 0)) },
			act:    opPeriodic,
			want:   want{code: 503, says: []string{"108"}},
			lost:   true,
			check:  statusIs(statusNeedsBootstrap),
			resume: rebootstrap,
		},
		{name: "periodic/clock-jump-back-1h", op: "periodic renewal", fault: "clock jumps back 1 hour after a renewal",
			sim: rotate, arrange: func(m *mx) { due(m); _ = m.tick() },
			inject: func(m *mx) { m.grants0 = m.sim.GrantCalls("refresh_token"); m.clock.Advance(-time.Hour) }, act: opPeriodic,
			want: want{code: 200, warn: false}, check: grantsMade(0)},
		{name: "periodic/clock-jump-back-during-backoff", op: "periodic renewal", fault: "503 then the clock jumps back 30 minutes",
			sim: rotate, arrange: due,
			inject: func(m *mx) {
				m.fault(tokenEP, 10, status(503, ""))
				_ = m.tick()
				m.clock.Advance(-30 * time.Minute)
			},
			act: opPeriodic, want: want{code: 200, warn: true, says: []string{"503"}},
			resume: func(m *mx) {
				m.clearAll()
				m.clock.Advance(35 * time.Minute)
				if err := m.tick(); err != nil {
					m.t.Errorf("periodic after the fault cleared: %v", err)
				}
				mustCode(m, opCreds(m), 200, false)
			}},
		{name: "periodic/engine-clock-steps-ahead-20m", op: "periodic renewal", fault: "the engine's clock (not Concur's) steps 20 minutes ahead",
			sim: rotate, arrange: atAge(35 * time.Minute), inject: stepEngineClock(20 * time.Minute), act: opPeriodic,
			want: want{code: 200, warn: false}, check: grantsMade(1)},

		// creds with min_ttl: a renewal is wanted, but the current token is still good.
		{name: "creds-min-ttl/503", op: "creds min_ttl=55m", fault: "token endpoint 503",
			sim: rotate, arrange: fresh, inject: simFault(tokenEP, 10, status(503, "")), act: opCredsMinTTL,
			want: want{code: 200, warn: true, says: []string{"503"}}},
		{name: "creds-min-ttl/timeout", op: "creds min_ttl=55m", fault: "token endpoint slower than the per-attempt timeout",
			sim: rotate, timeout: short, arrange: fresh, inject: simFault(tokenEP, 10, delay), act: opCredsMinTTL,
			want: want{code: 200, warn: true, says: []string{"no response"}}},
		{name: "creds-min-ttl/storage-write-fails", op: "creds min_ttl=55m", fault: "storage refuses the write after the refresh",
			sim: rotate, arrange: fresh, inject: func(m *mx) { m.storage.failAfterMarker(1) }, act: opCredsMinTTL,
			want: want{code: 500, says: []string{"could not store"}}, resume: writesKeptTokens},

		// rotate.
		{name: "rotate/503", op: "rotate", fault: "token endpoint 503",
			sim: rotate, arrange: fresh, inject: simFault(tokenEP, 10, status(503, "")), act: opRotate,
			want: want{code: 502, says: []string{"503"}}},
		{name: "rotate/429", op: "rotate", fault: "token endpoint 429, Retry-After: 30",
			sim: rotate, arrange: fresh, inject: simFault(tokenEP, 10, status(429, "30")), act: opRotate,
			want: want{code: 429, says: []string{"429"}}},
		{name: "rotate/twice-in-a-row", op: "rotate, rotate", fault: "the refresh token rotated twice in a row",
			sim: rotate, arrange: fresh,
			act: func(m *mx) outcome {
				if o := opRotate(m); o.code != 200 {
					return o
				}
				m.before = m.storedToken().RefreshToken // the first successor
				return opRotate(m)
			},
			want: want{code: 200, warn: false}, check: func(m *mx) {
				grantsMade(2)(m)
				if m.sim.RefreshTokenValid(m.before) {
					m.t.Errorf("the first successor is still valid under strict rotation")
				}
			}},
		{name: "rotate/code16-loop", op: "rotate", fault: "code 16 from A to B and from B back to A",
			sim: rotate, door: true, arrange: fresh,
			inject: func(m *mx) {
				m.door.next(tokenPath, 10, code16(m.door2.URL))
				m.door2.next(tokenPath, 10, code16(m.door.URL))
			},
			act: opRotate, want: want{code: 502, says: []string{"redirect loop"}}, check: statusIs(statusDegraded),
			note: "status degraded (the refresh token is still valid); renewal resumes once Concur answers normally"},
		{name: "rotate/storage-write-fails", op: "rotate", fault: "storage refuses the write after the refresh",
			sim: rotate, arrange: fresh, inject: func(m *mx) { m.storage.failAfterMarker(1) }, act: opRotate,
			want: want{code: 500, says: []string{"storage unavailable"}}, check: statusIs(statusDegraded), resume: writesKeptTokens},

		// Identity reads.
		{name: "profile/401-once-before-expiry", op: "profile read", fault: "Identity rejects the unexpired token once (401)",
			sim: rotate, arrange: fresh, inject: simFault(usersEP, 1, status(401, "")), act: opProfile,
			want: want{code: 200, warn: false}, check: grantsMade(1)},
		{name: "profile/403-once-before-expiry", op: "profile read", fault: "Identity rejects the unexpired token once (403)",
			sim: rotate, arrange: fresh, inject: simFault(usersEP, 1, status(403, "")), act: opProfile,
			want: want{code: 200, warn: false}, check: grantsMade(1)},
		{name: "profile/401-always", op: "profile read", fault: "Identity rejects every token (401)",
			sim: rotate, arrange: fresh, inject: simFault(usersEP, 10, status(401, "")), act: opProfile,
			want: want{code: 502, says: []string{"401"}}, check: grantsMade(1)},
		{name: "profile/401-and-token-endpoint-503", op: "profile read", fault: "401 at Identity, then 503 at the token endpoint",
			sim: rotate, arrange: fresh,
			inject: func(m *mx) { m.fault(usersEP, 1, status(401, "")); m.fault(tokenEP, 10, status(503, "")) },
			act:    opProfile, want: want{code: 502, says: []string{"503"}}},
		{name: "profile/503", op: "profile read", fault: "Identity 503",
			sim: rotate, arrange: fresh, inject: simFault(usersEP, 10, status(503, "")), act: opProfile,
			want: want{code: 502, says: []string{"503"}}, check: grantsMade(0)},
		{name: "profile/429", op: "profile read", fault: "Identity 429, Retry-After: 1",
			sim: rotate, arrange: fresh, inject: simFault(usersEP, 10, status(429, "1")), act: opProfile,
			want: want{code: 429, says: []string{"429"}}},
		{name: "profile/html-200", op: "profile read", fault: "Identity answers a 200 HTML page",
			sim: rotate, door: true, arrange: fresh, inject: doorFault(usersPath, 10, answer(200, "text/html", htmlPage)), act: opProfile,
			want: want{code: 502, says: []string{"malformed user response"}}},
		{
			name:    "profile/engine-clock-steps-back-20m",
			op:      "profile read",
			fault:   "the engine's clock (not Concur's) steps 20 minutes back: Identity rejects the token the engine thinks valid",
			sim:     rotate,
			arrange: atAge(65 * time.Minute),
			inject:  stepEngineClock(-20 * time.Minute),
			act:     opProfile,
			want:    want{code: 200, warn: false},
			check: all(grantsMade(1), func(m *mx) {
				if m.sim.Calls(usersEP) != 2 {
					m.t.Errorf("Identity calls %d, want 2 (rejected, then retried with the renewed token)", m.sim.Calls(usersEP))
				}
			}),
		},
		{name: "profile-search/malformed-json", op: "profile search", fault: "Identity 200 with truncated JSON",
			sim: rotate, arrange: fresh, inject: simFault(usersEP, 10, malformed), act: opSearch,
			want: want{code: 502, says: []string{"malformed user list"}}},
		{name: "profile-search/oversized-body", op: "profile search", fault: "Identity 200 with a 3 MiB body",
			sim: rotate, arrange: fresh, inject: simFault(usersEP, 10, oversized), act: opSearch,
			want: want{code: 502, says: []string{"exceeds the limit"}}},
		{name: "profile-search/timeout", op: "profile search", fault: "Identity slower than the per-attempt timeout",
			sim: rotate, timeout: short, arrange: fresh, inject: simFault(usersEP, 10, delay), act: opSearch,
			want: want{code: 504, says: []string{"no response"}}},
		{name: "profile-search/connection-dropped", op: "profile search", fault: "Identity drops the connection",
			sim: rotate, arrange: fresh, inject: simFault(usersEP, 10, drop), act: opSearch,
			want: want{code: 502, says: []string{"no response"}}},
		{name: "profile-search/slow-body", op: "profile search", fault: "Identity headers sent, body stalls past the timeout",
			sim: rotate, door: true, timeout: short, arrange: fresh, inject: doorFault(usersPath, 10, slowBody(10*time.Second)), act: opSearch,
			want: want{code: 502, says: []string{"reading response body"}}},

		// Bootstrap (config write with a request or refresh token).
		{name: "bootstrap-request-token/503", op: "config write request_token", fault: "token endpoint 503",
			sim: rotate, noBootstrap: true, inject: simFault(tokenEP, 10, status(503, "")), act: opBootstrapRequest,
			want: want{code: 502, says: []string{"503"}}},
		{name: "bootstrap-request-token/timeout", op: "config write request_token", fault: "token endpoint slower than the per-attempt timeout",
			sim: rotate, noBootstrap: true, timeout: short, inject: simFault(tokenEP, 10, delay), act: opBootstrapRequest,
			want: want{code: 504, says: []string{"no response"}}},
		{
			name:        "bootstrap-request-token/drop-after-grant",
			op:          "config write request_token",
			fault:       "Concur issues tokens, then drops the connection",
			sim:         rotate,
			noBootstrap: true,
			inject:      simFault(tokenEP, 1, dropAfter),
			act:         opBootstrapRequest,
			want:        want{code: 200, warn: false},
		},
		{name: "bootstrap-request-token/code16-loop", op: "config write request_token", fault: "code 16 from A to B and from B back to A",
			sim: rotate, door: true, noBootstrap: true,
			inject: func(m *mx) {
				m.door.next(tokenPath, 10, code16(m.door2.URL))
				m.door2.next(tokenPath, 10, code16(m.door.URL))
			},
			act: opBootstrapRequest, want: want{code: 400, says: []string{"request_token", "redirect loop", "nothing was stored"}}},
		{
			name:        "bootstrap-request-token/storage-write-fails",
			op:          "config write request_token",
			fault:       "storage refuses the write after the exchange",
			sim:         rotate,
			noBootstrap: true,
			inject:      func(m *mx) { m.storage.set(1, false) },
			act:         opBootstrapRequest,
			want:        want{code: 500, says: []string{"could not store"}},
			resume:      writesKeptTokens,
		},
		{name: "bootstrap-refresh-token/429", op: "config write refresh_token", fault: "token endpoint 429, no Retry-After",
			sim: rotate, noBootstrap: true, inject: simFault(tokenEP, 10, status(429, "")), act: opBootstrapRefresh,
			want: want{code: 429, says: []string{"429"}}},
		{
			name:        "bootstrap-refresh-token/drop-after-grant-grace",
			op:          "config write refresh_token",
			fault:       "Concur rotates, then drops the connection (grace rotation)",
			sim:         grace,
			noBootstrap: true,
			inject:      simFault(tokenEP, 1, dropAfter),
			act:         opBootstrapRefresh,
			want:        want{code: 200, warn: false},
		},

		// config delete revoke=true.
		{name: "delete-revoke/503", op: "config delete revoke=true", fault: "app-mgmt 503",
			sim: rotate, arrange: fresh, inject: simFault(connsEP, 10, status(503, "")), act: opDeleteRevoke,
			want: want{code: 502, says: []string{"503"}}},
		{name: "delete-revoke/timeout", op: "config delete revoke=true", fault: "app-mgmt slower than the per-attempt timeout",
			sim: rotate, timeout: short, arrange: fresh, inject: simFault(connsEP, 10, delay), act: opDeleteRevoke,
			want: want{code: 504, says: []string{"no response"}}},
		{name: "delete-revoke/drop-after-revocation", op: "config delete revoke=true", fault: "Concur revokes, then drops the connection",
			sim: rotate, arrange: fresh, inject: simFault(connsEP, 1, dropAfter), act: opDeleteRevoke,
			want: want{code: 204}, lost: true, resume: rebootstrap,
			note: "Concur refuses the token on the retried revocation; a refresh grant answered 108 shows the connection is gone, " +
				"so the delete completes"},

		// Storage.
		{name: "storage/read-fails-creds", op: "creds (cold cache)", fault: "storage read fails",
			sim: rotate, arrange: func(m *mx) { fresh(m); m.b.forget() }, inject: func(m *mx) { m.st.failGets.Store(1) }, act: opCreds,
			want: want{code: 500, says: []string{"storage read unavailable"}}, check: grantsMade(0)},
		{name: "storage/read-fails-periodic", op: "periodic renewal (cold cache)", fault: "storage read fails",
			sim: rotate, arrange: func(m *mx) { due(m); m.b.forget() }, inject: func(m *mx) { m.st.failGets.Store(2) }, act: opPeriodic,
			want: want{code: 500, says: []string{"storage read unavailable"}}, check: all(grantsMade(0), func(m *mx) {
				if m.perr == nil {
					m.t.Errorf("periodic reported no error although storage could not be read")
				}
			})},
		{
			name:    "storage/write-fails-after-periodic-refresh",
			op:      "periodic renewal, then creds",
			fault:   "storage refuses the write after the refresh, then recovers",
			sim:     rotate,
			arrange: due,
			inject:  func(m *mx) { m.storage.failAfterMarker(1) },
			act: func(m *mx) outcome {
				m.perr = m.tick()
				if _, unsaved := m.memory(); !unsaved || m.perr == nil {
					m.t.Errorf("after the failed write: unsaved %v, periodic error %v", unsaved, m.perr)
				}
				if m.status() != statusDegraded {
					m.t.Errorf("status %q while tokens are unsaved, want degraded", m.status())
				}
				return opCreds(m) // the reader writes the kept tokens first, then is served
			},
			want:   want{code: 200, warn: false},
			check:  grantsMade(1),
			resume: func(m *mx) { m.clearAll(); m.clock.Advance(time.Hour); mustCode(m, opPeriodic(m), 200, false) },
		},
		{name: "storage/write-fails-two-ticks", op: "periodic renewal x2", fault: "storage refuses writes on two ticks in a row",
			sim: rotate, arrange: due, inject: func(m *mx) { m.storage.failAfterMarker(3) },
			act:  func(m *mx) outcome { _ = m.tick(); m.clock.Advance(time.Minute); return opPeriodic(m) },
			want: want{code: 500, says: []string{"could not store"}}, check: grantsMade(1), resume: writesKeptTokens},
		{name: "storage/write-fails-creds-expired", op: "creds (token expired)", fault: "storage refuses the write after the refresh",
			sim: rotate, arrange: expired, inject: func(m *mx) { m.storage.failAfterMarker(1) }, act: opCreds,
			want: want{code: 500, says: []string{"could not store"}}, resume: writesKeptTokens},
		{name: "storage/write-fails-settings-only", op: "config write refresh_margin", fault: "storage refuses the write",
			sim: rotate, arrange: fresh, inject: func(m *mx) { m.storage.set(1, false) }, act: opSettings,
			want: want{code: 500, says: []string{"storage unavailable"}}, check: grantsMade(0)},
		{name: "storage/write-fails-with-503", op: "periodic renewal", fault: "token endpoint 503 and storage refuses the bookkeeping write",
			sim: rotate, arrange: due, inject: func(m *mx) { m.fault(tokenEP, 10, status(503, "")); m.storage.failAfterMarker(1) }, act: opPeriodic,
			want: want{code: 200, warn: true, says: []string{"503"}}, check: statusIs(statusDegraded)},
	}
	return append(cs, custodyCases()...)
}

func mustCode(m *mx, o outcome, code int, warn bool) {
	m.t.Helper()
	if o.code != code || (code == 200 && (len(o.warnings) > 0) != warn) {
		m.t.Errorf("got %v %s %v, want %d (warning: %v)", o, o.msg, o.warnings, code, warn)
	}
}

// rebootstrap is the operator's way back once Concur has no live refresh
// token for the engine: a new company request token.
func rebootstrap(m *mx) {
	m.clearAll()
	d := m.baseConfig()
	d["request_token"] = m.sim.NewRequestToken(testClientID, testCompany)
	mustCode(m, m.req(logical.UpdateOperation, "config", d), 200, false)
	mustCode(m, opCreds(m), 200, false)
}

// writesKeptTokens: once storage accepts writes, the tokens kept in memory
// are written before anything else, without asking Concur again.
func writesKeptTokens(m *mx) {
	m.clearAll()
	mem, unsaved := m.memory()
	if !unsaved {
		m.t.Errorf("no unsaved tokens after the write failure")
	}
	grants := m.sim.GrantCalls("refresh_token") + m.sim.GrantCalls("password")
	if err := m.tick(); err != nil {
		m.t.Errorf("periodic after storage recovered: %v", err)
	}
	if got := m.sim.GrantCalls("refresh_token") + m.sim.GrantCalls("password"); got != grants {
		m.t.Errorf("Concur was asked again (%d grants) instead of storing the kept tokens", got-grants)
	}
	if st := m.storedToken().RefreshToken; st != mem {
		m.t.Errorf("storage does not hold the kept refresh token")
	}
	mustCode(m, opCreds(m), 200, false)
}

func TestFaultMatrix(t *testing.T) {
	cases := faultMatrixCases()
	if len(cases) < 40 {
		t.Fatalf("the matrix has %d cases, want at least 40", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case %q", c.name)
		}
		seen[c.name] = true
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runMatrixCase(t, c)
		})
	}
}

func runMatrixCase(t *testing.T, c matrixCase) {
	rec := recordCase(t, suiteMatrix, c.name, c.op, c.fault)
	simOpts := c.sim
	var door, door2 *frontDoor
	if c.door {
		door, door2 = newFrontDoor(t), newFrontDoor(t)
		simOpts.Geolocation = door.URL // Concur names the front door: everything goes through it
	}
	e := newTestEnv(t, simOpts)
	// Every case's client can time attempts out; the deadline is only
	// switched on (to c.timeout) for the fault, and off again to recover.
	dt := &deadlineTransport{base: e.sim.Client().Transport}
	e.b.httpClient = &http.Client{Transport: dt}
	ct := &caseT{}
	m := &mx{testEnv: e, t: ct, st: &readFailStorage{faultyStorage: e.storage}, door: door, door2: door2, baseURL: e.sim.URL,
		processed: make(chan struct{}, 1)}
	// The engine's clock is Concur's plus a skew that cases may step.
	e.b.now = func() time.Time { return e.clock.Now().Add(time.Duration(m.skew.Load())) }
	if door != nil {
		door.setTarget(e.sim.URL)
		door2.setTarget(e.sim.URL)
		m.baseURL = door.URL
	}
	users := e.sim.Users(testCompany)
	m.user = users[len(users)/2]
	m.reqTok = e.sim.NewRequestToken(testClientID, testCompany)
	m.seedRT = e.sim.NewRefreshToken(testClientID, testCompany)
	if !c.noBootstrap {
		if o := opBootstrapRequest(m); o.code != 200 {
			t.Fatalf("setup: bootstrap: %v %s", o, o.msg)
		}
		if m.storedToken().RefreshToken != e.currentRefreshToken() {
			t.Fatalf("setup: the engine does not hold Concur's refresh token after bootstrap")
		}
		m.reqTok = e.sim.NewRequestToken(testClientID, testCompany)
	}
	if c.arrange != nil {
		c.arrange(m)
	}
	m.before = m.storedToken().RefreshToken
	if c.noBootstrap {
		m.before = m.seedRT
	}
	m.grants0 = e.sim.GrantCalls("refresh_token")
	dt.timeout.Store(int64(c.timeout))
	m.deadline = dt
	if c.inject != nil {
		c.inject(m)
	}

	// The operation, and what the caller got.
	o := c.act(m)
	rec.Caller = o.String()
	if o.code != c.want.code {
		ct.Errorf("caller got %v (%s), want %d", o, o.text(), c.want.code)
	}
	if o.code == 200 && (len(o.warnings) > 0) != c.want.warn {
		ct.Errorf("warnings %q, want a warning: %v", o.warnings, c.want.warn)
	}
	for _, s := range c.want.says {
		if !strings.Contains(o.text(), s) {
			ct.Errorf("the caller was told %q, which does not mention %q", o.text(), s)
		}
	}
	if _, ok := o.data["expires_at"]; o.code == 200 && ok && lifeLeft(o.data, m.clock.Now()) <= 0 {
		ct.Errorf("served an expired token (expires_at %v)", o.data["expires_at"])
	}
	if c.check != nil {
		c.check(m)
	}

	// What became of the refresh token.
	rec.Token = tokenVerdict(m, c)

	// Service resumes once the fault clears.
	if c.resume != nil {
		c.resume(m)
	} else {
		defaultResume(m, c)
	}
	if !strings.HasPrefix(c.op, "config delete") {
		settle(m)
		if st, cur := m.storedToken().RefreshToken, e.currentRefreshToken(); st != cur || st == "" {
			ct.Errorf("after resuming, storage does not hold Concur's current refresh token")
		}
		if _, unsaved := m.memory(); unsaved {
			ct.Errorf("after resuming, tokens are still unsaved")
		}
	}
	if n := e.sim.ErrorCount(108); n != 0 && !c.lost {
		ct.Errorf("Concur answered invalid_grant %d times", n)
	}

	rec.Resumed = "yes"
	if ct.failed() {
		rec.Resumed = "no"
	}
	ct.verdict(t, c.skip, rec)
	if c.note != "" {
		rec.Note = c.note
	}
}

// settle lets the engine finish recovering on its own: if the last renewal
// failed, the next one the periodic function makes must succeed.
func settle(m *mx) {
	if m.status() == statusOK {
		return
	}
	if left := m.b.remaining(m.b.defaultEntry()) - m.b.refreshMargin(); left > 0 {
		m.clock.Advance(left + time.Second)
	}
	m.clock.Advance(untilNextAttempt(m))
	if err := m.tick(); err != nil {
		m.t.Errorf("periodic renewal after the fault cleared: %v", err)
	}
	if s := m.status(); s != statusOK {
		m.t.Errorf("after resuming, status %q", s)
	}
}

// untilNextAttempt is how long the engine's backoff still lasts, plus a second.
func untilNextAttempt(m *mx) time.Duration {
	st := m.b.defaultEntry()
	if st == nil {
		return time.Second
	}
	return max(st.Token.NextAttemptAt.Sub(m.b.now()), 0) + time.Second
}

// defaultResume clears the fault, waits out any backoff and redoes the
// operation, which must now succeed without a warning.
func defaultResume(m *mx, c matrixCase) {
	m.clearAll()
	m.clock.Advance(untilNextAttempt(m))
	if c.noBootstrap {
		m.reqTok = m.sim.NewRequestToken(testClientID, testCompany)
	}
	o := c.act(m)
	okCode := 200
	if strings.HasPrefix(c.op, "config delete") {
		okCode = 204
	}
	if o.code != okCode || len(o.warnings) > 0 {
		m.t.Errorf("after the fault cleared: %v %s %v, want %d without a warning", o, o.msg, o.warnings, okCode)
	}
	if okCode == 204 {
		if raw, _ := m.storage.Get(context.Background(), defaultCompanyKey); raw != nil {
			m.t.Errorf("state still stored after a successful delete")
		}
	}
}

// tokenVerdict checks the stored refresh token right after the operation
// and says what became of it.
func tokenVerdict(m *mx, c matrixCase) string {
	m.t.Helper()
	stored := m.storedToken().RefreshToken
	mem, unsaved := m.memory()
	cur := m.currentRefreshToken()
	switch {
	case c.lost:
		if cur != "" && stored == cur {
			m.t.Errorf("expected the refresh token to be gone at Concur, yet storage holds a live one")
		}
		if strings.HasPrefix(c.op, "config delete") {
			return "revoked at Concur, as asked"
		}
		return "lost: Concur invalidated it (inherent, needs a new bootstrap)"
	case unsaved:
		if mem != cur {
			m.t.Errorf("unsaved tokens in memory are not Concur's current ones")
		}
		if stored != "" && stored != m.before && !m.sim.RefreshTokenValid(stored) {
			m.t.Errorf("storage holds a refresh token that is neither the previous one nor valid")
		}
		return "newer one kept in memory, written once storage recovered"
	case c.noBootstrap && stored != "" && stored == cur:
		return "issued and stored"
	case stored == "" && c.noBootstrap:
		if !m.sim.RefreshTokenValid(m.seedRT) && m.sim.GrantCalls("refresh_token") > 0 && strings.Contains(c.op, "refresh_token") {
			m.t.Errorf("the given refresh token died although nothing was stored")
		}
		return "nothing stored (bootstrap refused)"
	case stored == "":
		m.t.Errorf("storage holds no refresh token")
		return "missing"
	case stored == cur && stored == m.before:
		return "intact"
	case stored == cur:
		if mem != stored {
			m.t.Errorf("memory and storage disagree")
		}
		return "replaced by Concur's newer one"
	case m.sim.RefreshTokenValid(stored):
		return "previous one, still valid"
	}
	m.t.Errorf("storage holds a refresh token Concur no longer honours")
	return "LOST"
}
