package backend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// The soak: months of simulated time on the controllable clock, with a
// refresh token that rotates on every use, periodic ticks every 1-3
// minutes (Vault ticks every minute), random Concur faults and storage write failures drawn from a
// fixed seed, and once a simulated day a burst of thousands of concurrent
// readers (every other burst asking for min_ttl=55m, so that all of them
// want a renewal at once).
//
// It must end with zero lost refresh tokens (after every step the engine
// holds Concur's current one, in storage unless a write has just failed),
// zero invalid_grant answers, no reader ever handed an expired token, and
// refresh grants within one per access-token lifetime (less the margin)
// plus one per min_ttl burst plus one per faulted attempt.
//
// Length: SOAK_MONTHS (default 2, as CI runs it; `make soak` runs 12),
// -short: one week. SOAK_READERS (default 2000), SOAK_SEED (default below).

const soakCaseName = "rotate/random-faults/concurrent-readers"

const defaultSoakSeed = 20260105

func soakEnvInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

type soakStats struct {
	steps, ticks, tickErrors    int
	bursts, minTTLBursts, reads int
	readsWarned, readsUnsaved   int
	faultsInjected, faultsFail  int
	storageFaults, unsavedSteps int
	profileChecks               int
}

func TestSoak(t *testing.T) {
	months := soakEnvInt(t, "SOAK_MONTHS", 2)
	readers := soakEnvInt(t, "SOAK_READERS", 2000)
	seed := uint64(soakEnvInt(t, "SOAK_SEED", defaultSoakSeed)) //nolint:gosec // a seed from the environment, any bits will do
	rng := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15)) //nolint:gosec // seeded, so a failing run can be replayed

	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate, Users: 1})
	e.bootstrap()
	e.sim.ResetCounters()
	start := e.clock.Now()
	end := start.AddDate(0, months, 0)
	span := fmt.Sprintf("%d months", months)
	if testing.Short() {
		end, span = start.AddDate(0, 0, 7), "7 days"
	}
	rec := recordCase(t, suiteSoak, soakCaseName,
		"periodic tick every 1-3 min; a burst of "+strconv.Itoa(readers)+" concurrent creds readers a day",
		fmt.Sprintf("%s simulated; rotation rotate; random token-endpoint faults and storage write failures (seed %d)", span, seed))
	user := e.sim.Users(testCompany)[0]
	margin := e.b.refreshMargin()

	r := &soakRun{t: t, e: e, rng: rng, readers: readers, user: user,
		nextBurst: start.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))}
	for e.clock.Now().Before(end) {
		r.st.steps++
		e.clock.Advance(time.Duration(1+rng.IntN(3)) * time.Minute)
		r.trouble()
		r.st.ticks++
		if err := e.periodic(); err != nil {
			r.st.tickErrors++
		}
		r.burstIfDue()
		r.checkStep()
	}
	st := r.st
	pending := e.sim.PendingFaults(concurtest.EndpointToken)
	e.sim.ClearFaults()
	e.storage.set(0, false)

	// Grants: one per (lifetime - margin), one per min_ttl burst, one per
	// faulted attempt, and one for the step at which the run started.
	elapsed := e.clock.Now().Sub(start)
	periodicBound := int(elapsed/(concurtest.AccessTokenLifetime-margin)) + 1
	bound := periodicBound + st.minTTLBursts + st.faultsFail - pending + 1
	grants := e.sim.GrantCalls("refresh_token")
	if grants > bound {
		t.Errorf("refresh grants %d exceed the bound %d (%d periodic + %d min_ttl bursts + %d faulted attempts)",
			grants, bound, periodicBound, st.minTTLBursts, st.faultsFail-pending)
	}
	if grants < periodicBound*8/10 {
		t.Errorf("refresh grants %d: far fewer than the %d renewals the schedule needs", grants, periodicBound)
	}
	final := e.storedToken()
	if final.RefreshExpiresAt.Before(e.clock.Now().AddDate(0, 5, 0)) {
		t.Errorf("refresh token expires %s: renewals did not slide it forward", final.RefreshExpiresAt)
	}
	if c := e.creds(); c["access_token"] != final.AccessToken {
		t.Errorf("creds does not serve the stored token at the end")
	}

	rec.Caller = fmt.Sprintf("%d reads in %d bursts: 0 expired, %d with a warning, %d refused while storage held back writes",
		st.reads, st.bursts, st.readsWarned, st.readsUnsaved)
	rec.Token = fmt.Sprintf(
		"never lost: Concur's current one after each of %d steps (%d steps with a write pending); 0 invalid_grant",
		st.steps,
		st.unsavedSteps,
	)
	rec.Resumed = "yes"
	rec.Note = fmt.Sprintf(
		"%d refresh grants <= bound %d; %d faulted token requests injected, %d storage write failures; %d failed ticks; "+
			"%d profile reads with the served token",
		grants,
		bound,
		st.faultsInjected,
		st.storageFaults,
		st.tickErrors,
		st.profileChecks,
	)
	t.Logf("%s: %s; %s; %s", span, rec.Caller, rec.Token, rec.Note)
}

// soakRun is the state of one soak between its steps.
type soakRun struct {
	t          *testing.T
	e          *testEnv
	rng        *rand.Rand
	readers    int
	user       concurtest.User
	st         soakStats
	nextBurst  time.Time
	unsavedRun int
}

// soakFailing are the token-endpoint faults the soak injects.
var soakFailing = []concurtest.Fault{
	{Kind: concurtest.FaultStatus, Status: 429},
	{Kind: concurtest.FaultStatus, Status: 429, RetryAfter: "30"},
	{Kind: concurtest.FaultStatus, Status: 500},
	{Kind: concurtest.FaultStatus, Status: 503},
	{Kind: concurtest.FaultStatus, Status: 503, RetryAfter: "120"},
	{Kind: concurtest.FaultDrop},
	{Kind: concurtest.FaultMalformedJSON},
	{Kind: concurtest.FaultOversized, Size: 2<<20 + 1024},
}

func (r *soakRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s (step %d): %s", r.e.clock.Now().Format(time.RFC3339), r.st.steps, fmt.Sprintf(format, args...))
}

// calm: no fault pending and the last renewal succeeded.
func (r *soakRun) calm() bool {
	return r.e.sim.PendingFaults(concurtest.EndpointToken) == 0 && r.e.b.defaultEntry().Token.Failures == 0
}

// trouble injects random faults. Concur faults are injected only when calm,
// so that one renewal meets at most one failed attempt (at most three failed
// requests): the margin then always leaves time to recover. Longer outages
// would let the access token expire, rightly; the fault matrix covers them.
func (r *soakRun) trouble() {
	e, rng := r.e, r.rng
	if r.calm() {
		switch x := rng.Float64(); {
		case x < 0.02:
			n, f := 1+rng.IntN(3), soakFailing[rng.IntN(len(soakFailing))]
			if (f.RetryAfter != "" && f.RetryAfter != "0") || f.Kind == concurtest.FaultMalformedJSON || f.Kind == concurtest.FaultOversized {
				// A Retry-After beyond the client's budget ends the renewal
				// at once and sets the next attempt time, and an unreadable
				// 2xx is never re-sent: one such answer is a whole failed
				// renewal, not one failed attempt.
				n = 1
			}
			e.sim.InjectFault(concurtest.EndpointToken, n, f)
			r.st.faultsInjected += n
			r.st.faultsFail += n
		case x < 0.025:
			e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultDelay, Delay: 20 * time.Millisecond})
			r.st.faultsInjected++
		}
	}
	// Storage faults only while Concur behaves: every grant now needs a
	// marker write first, so a refused write costs a renewal attempt.
	if _, unsaved := e.memory(); rng.Float64() < 0.004 && !unsaved && r.calm() {
		e.storage.set(1+rng.IntN(2), false)
		r.st.storageFaults++
	}
}

// burstIfDue runs the day's burst of readers.
func (r *soakRun) burstIfDue() {
	e := r.e
	if e.clock.Now().Before(r.nextBurst) {
		return
	}
	minTTL := r.st.bursts%2 == 1
	r.st.bursts++
	if minTTL {
		r.st.minTTLBursts++
		// Every other min_ttl burst meets a Concur that fails both
		// attempts of the shared renewal: readers must still be
		// served the current, valid token (with a warning).
		if r.st.minTTLBursts%2 == 0 && r.calm() {
			e.sim.InjectFault(concurtest.EndpointToken, 2, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 503})
			r.st.faultsInjected += 2
			r.st.faultsFail += 2
		}
	}
	soakBurst(r.t, e, r.readers, minTTL, &r.st)
	// The token readers got works at Concur.
	if _, unsaved := e.memory(); !unsaved {
		resp, err := e.request(logical.ReadOperation, "profile/"+r.user.ID, nil)
		if err != nil || resp == nil || resp.IsError() {
			r.fail("profile read with the served token: %v %v", resp, err)
		}
		r.st.profileChecks++
	}
	r.nextBurst = r.nextBurst.Add(24*time.Hour + time.Duration(r.rng.Int64N(int64(2*time.Hour))) - time.Hour)
}

// checkStep checks the invariants at the end of every step.
func (r *soakRun) checkStep() {
	e := r.e
	if n := e.sim.ErrorCount(108); n != 0 {
		r.fail("Concur answered invalid_grant %d times", n)
	}
	// Under strict rotation the only live refresh token is the newest,
	// so "valid" means "current" (checked in full every 500 steps).
	mem, unsaved := e.memory()
	cur := mem
	if r.st.steps%500 == 0 {
		cur = e.currentRefreshToken()
	}
	if mem != cur || !e.sim.RefreshTokenValid(mem) {
		r.fail("the engine does not hold Concur's current refresh token")
	}
	if unsaved {
		r.st.unsavedSteps++
		if r.unsavedRun++; r.unsavedRun > 3 {
			r.fail("tokens unsaved for %d steps although storage only refused a few writes", r.unsavedRun)
		}
	} else {
		r.unsavedRun = 0
		if stored := e.storedToken(); stored.RefreshToken != cur {
			r.fail("storage does not hold Concur's current refresh token")
		}
	}
	if left := e.b.remaining(e.b.defaultEntry()); left <= 0 {
		tok := e.b.defaultEntry().Token
		r.fail("the access token expired (%s): status %s, failures %d, next attempt %s, last refresh %s, last error %q, unsaved %v",
			left, tok.Status, tok.Failures, tok.NextAttemptAt.Format(time.RFC3339), tok.LastRefreshAt.Format(time.RFC3339),
			tok.LastError, unsaved)
	}
}

// soakBurst runs n concurrent creds reads and checks each answer.
func soakBurst(t *testing.T, e *testEnv, n int, minTTL bool, st *soakStats) {
	t.Helper()
	type result struct {
		token   string
		left    time.Duration
		warned  bool
		unsaved bool
		err     string
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var d map[string]any
			if minTTL {
				d = map[string]any{"min_ttl": "55m"}
			}
			resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
				Operation: logical.ReadOperation, Path: "creds", Data: d, Storage: e.storage,
			})
			switch {
			case err != nil && strings.Contains(err.Error(), msgUnsaved):
				results[i].unsaved = true
			case err != nil:
				results[i].err = err.Error()
			case resp == nil || resp.IsError():
				results[i].err = fmt.Sprint(resp)
			default:
				results[i].token, _ = resp.Data["access_token"].(string)
				results[i].left = lifeLeft(resp.Data, e.clock.Now())
				results[i].warned = len(resp.Warnings) > 0
			}
		}()
	}
	close(start)
	wg.Wait()

	tokens := map[string]bool{}
	for _, r := range results {
		st.reads++
		switch {
		case r.err != "":
			t.Fatalf("%s: a reader got %s", e.clock.Now().Format(time.RFC3339), r.err)
		case r.unsaved:
			st.readsUnsaved++
		case r.left <= 0 || r.token == "":
			t.Fatalf("%s: a reader got an expired or empty token (%s left)", e.clock.Now().Format(time.RFC3339), r.left)
		default:
			tokens[r.token] = true
			if r.warned {
				st.readsWarned++
			}
		}
	}
	// All readers of a burst share at most the token before and the one after a renewal.
	if len(tokens) > 2 {
		t.Fatalf("%s: one burst of readers got %d different tokens", e.clock.Now().Format(time.RFC3339), len(tokens))
	}
}
