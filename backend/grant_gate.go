package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

const (
	// maxConcurrentGrants bounds the mount's Concur token calls in flight
	// (Concur's rate limits are per app).
	maxConcurrentGrants = 4
	// defaultCleanWait bounds how long Clean waits for grants in flight.
	defaultCleanWait = 5 * time.Second
)

// errClosed: Clean ran; this instance makes no more Concur calls.
var errClosed = logical.CodedError(http.StatusServiceUnavailable,
	"the Concur engine is shutting down on this node (unmount, seal, step-down or plugin reload); try again")

// grantGate is what the app may do at Concur's token endpoint right now:
// the mount's grant slots, the slow-down after a 429, a refusal of the
// app's credentials, and the end of this instance (Clean). Only its own
// methods take its locks.
type grantGate struct {
	now func() time.Time
	log func() hclog.Logger
	// slots holds one token per Concur token call in flight.
	slots chan struct{}

	mu sync.RWMutex
	// slowUntil: Concur answered 429; background token calls wait till then.
	slowUntil time.Time
	// clientRefused: Concur refused the app's client credentials; background
	// token calls wait for a config write.
	clientRefused string
	closed        bool
	// closing is closed by shut: waits for a grant slot end with it.
	closing chan struct{}

	// live is held for reading by every Concur token call and every storage
	// write made for a company (see do); cut takes it for writing, so that
	// once cut returns none is under way and none starts.
	live sync.RWMutex
	cut  bool
	// life ends at cut: the contexts of grant jobs derive from it.
	life    context.Context
	endLife context.CancelFunc
}

func newGrantGate(now func() time.Time, log func() hclog.Logger) *grantGate {
	life, end := context.WithCancel(context.Background())
	return &grantGate{now: now, log: log, slots: make(chan struct{}, maxConcurrentGrants), closing: make(chan struct{}),
		life: life, endLife: end}
}

// jobContext is parent's values with the gate's life: it ends when the
// instance is cut off (Clean), whatever parent does.
func (g *grantGate) jobContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(g.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// do runs fn, a Concur token call or a storage write for a company, unless
// Clean has cut this instance off.
func (g *grantGate) do(fn func() error) error {
	g.live.RLock()
	defer g.live.RUnlock()
	if g.cut {
		return errClosed
	}
	return fn()
}

// takeSlot waits for one of the mount's grant slots; call release when the
// token call and its write are done.
func (g *grantGate) takeSlot(ctx context.Context) (release func(), err error) {
	select {
	case <-g.closing:
		return nil, errClosed
	default:
	}
	select {
	case g.slots <- struct{}{}:
		if g.isClosed() { // Clean ran while this call waited
			<-g.slots
			return nil, errClosed
		}
		return func() { <-g.slots }, nil
	case <-g.closing:
		return nil, errClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for one of the mount's %d Concur token calls in flight: %w", maxConcurrentGrants, ctx.Err())
	}
}

// noteResult makes the whole mount wait after Concur said the app is
// calling too often (429) or refused its client credentials; a grant that
// succeeded shows the credentials work again.
func (g *grantGate) noteResult(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ce *concur.Error
	switch {
	case err == nil:
		g.clientRefused = ""
	case !errors.As(err, &ce):
	case ce.StatusCode == http.StatusTooManyRequests:
		// As long as the company that got the 429 backs off after its first failure.
		g.slowUntil = latestOf(g.slowUntil, g.now().Add(backoff(1, err)))
		g.log().Warn("Concur asked the app to slow down (429); background token calls of every company wait",
			"until", g.slowUntil.UTC().Format(time.RFC3339))
	case concur.RefusesClient(err):
		g.clientRefused = ce.Error()
	}
}

// appChanged ends a refusal of the old credentials: the next token call
// tries the new ones.
func (g *grantGate) appChanged() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.clientRefused = ""
}

// pausedUntil is when paused background token calls may resume (zero: not
// paused): the end of a 429 slow-down, or after a refusal of the app's
// credentials the next look, backoffMax later.
func (g *grantGate) pausedUntil(now time.Time) time.Time {
	g.mu.RLock()
	defer g.mu.RUnlock()
	switch {
	case now.Before(g.slowUntil):
		return g.slowUntil
	case g.clientRefused != "":
		return now.Add(backoffMax)
	}
	return time.Time{}
}

// paused says why token calls not asked for by an operator may not be made now.
func (g *grantGate) paused() error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if now := g.now(); now.Before(g.slowUntil) {
		return logical.CodedError(http.StatusTooManyRequests, fmt.Sprintf(
			"Concur asked this app to slow down (HTTP 429); no token calls before %s", g.slowUntil.UTC().Format(time.RFC3339)))
	}
	if g.clientRefused != "" {
		return logical.CodedError(http.StatusBadGateway, "Concur refused the app's client_id or client_secret; "+
			"token calls wait for a config write with the right ones: "+g.clientRefused)
	}
	return nil
}

func (g *grantGate) isClosed() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.closed
}

// shut stops new token calls (the start of Clean); calls in flight go on.
func (g *grantGate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		close(g.closing)
	}
}

// cutOff ends this instance's Concur calls and storage writes for
// companies (the end of Clean): calls in flight are cancelled, and once it
// returns no call or write is under way and none starts.
func (g *grantGate) cutOff() {
	g.endLife()
	g.live.Lock()
	defer g.live.Unlock()
	g.cut = true
}
