package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// configure stores c, after obtaining tokens from Concur when it bootstraps
// (detached from ctx, like every grant), and returns the new entry.
func (co *company) configure(ctx context.Context, s logical.Storage, c companyChange) (*companyEntry, error) {
	var out *companyEntry
	err := co.run(ctx, "", func(gctx context.Context) error {
		next, err := co.configureLocked(gctx, s, c)
		out = next
		return err
	})
	if err != nil {
		return nil, err // out may still be written by the job: do not read it
	}
	return out, nil
}

// configureLocked stores c under grantLock (see configure).
func (co *company) configureLocked(ctx context.Context, s logical.Storage, c companyChange) (*companyEntry, error) {
	v, err := co.latest(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := co.checkNoForeignGrant(v); err != nil {
		return nil, err
	}
	next := &companyEntry{CompanyUUID: c.companyUUID, Prewarm: c.prewarm}
	switch {
	case c.bootstraps():
		tok, gerr := co.bootstrapGrant(ctx, c)
		if gerr != nil {
			return nil, gerr
		}
		next = co.issued(next, tok, c.app)
		if c.setsApp && c.app.entry != co.deps.app.current().entry {
			co.deps.app.adopt(c.app) // the tokens it obtained must stay renewable with it
		}
		err = co.saveIssued(ctx, s, next)
	case v.entry != nil && v.entry.CompanyUUID == c.companyUUID:
		next.Token = v.entry.Token
		err = co.saveState(ctx, s, next)
	case v.unreadable != "":
		// It may hold the company's only refresh token: only a new token replaces it.
		return nil, logical.CodedError(http.StatusBadRequest, "request_token, refresh_token: one is needed here: "+
			msgUnreadable+": "+v.unreadable)
	default:
		next.Token.Status = statusNeedsBootstrap
		err = co.saveState(ctx, s, next)
	}
	if err != nil {
		return nil, err
	}
	return next, co.storeApp(ctx, s, c)
}

// storeApp stores a config write's app settings, after its company, or
// writes settings adopted by its grant.
func (co *company) storeApp(ctx context.Context, s logical.Storage, c companyChange) error {
	app := c.app
	if !c.setsApp || app.entry == co.deps.app.current().entry {
		return co.deps.gate.do(func() error { return co.deps.app.flush(ctx, s) })
	}
	if err := co.deps.gate.do(func() error { return co.deps.app.save(ctx, s, app) }); err != nil {
		return fmt.Errorf("%w: %w", errAppUnsaved, err)
	}
	return nil
}

// bootstrapGrant exchanges the request token, or checks the refresh token
// with a grant. No marker: the token presented is not the stored one, so no
// other instance can be presenting it.
func (co *company) bootstrapGrant(ctx context.Context, c companyChange) (*concur.Token, error) {
	a := c.app.entry
	var tok *concur.Token
	var err error
	grantType := grantRefresh
	err = co.deps.gate.do(func() (err error) {
		if !c.requestToken.IsZero() {
			grantType = grantExchange
			tok, err = c.app.client.ExchangeRequestToken(ctx, a.BaseURL, a.credentials(), c.companyUUID, c.requestToken)
		} else {
			tok, err = c.app.client.Refresh(ctx, c.refreshBase, a.credentials(), c.refreshToken)
		}
		return err
	})
	if errors.Is(err, errClosed) {
		return nil, err
	}
	co.deps.metrics.grant(grantType, err)
	if c.app.entry == co.deps.app.current().entry || !concur.RefusesClient(err) {
		// A refusal of settings that are not stored yet says nothing about the app's.
		co.deps.gate.noteResult(err)
	}
	if err != nil {
		return nil, err
	}
	if err := checkBootstrapSubject(tok, c.companyUUID); err != nil {
		return nil, err
	}
	if tok.RefreshToken.IsZero() {
		// Without a refresh token the engine could serve for an hour and then nothing.
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
			"%s: Concur's answer carried no refresh token (correlation id %s); nothing was stored", c.bootstrapField(), tok.CorrelationID))
	}
	return tok, nil
}

// checkNoForeignGrant refuses to replace or delete tokens while another
// instance's grant for them is in flight: its result would land after.
func (co *company) checkNoForeignGrant(v companyView) error {
	if v.entry == nil {
		return nil
	}
	return co.checkMarker(&v.entry.Token)
}

// remove deletes the company's tokens, once no token call is in flight.
func (co *company) remove(ctx context.Context, s logical.Storage) error {
	return co.run(ctx, "", func(gctx context.Context) error {
		v, err := co.latest(gctx, s)
		if err != nil {
			return err
		}
		if err := co.checkNoForeignGrant(v); err != nil {
			return err
		}
		if err := co.deps.gate.do(func() error { return s.Delete(gctx, companyStorageKey(co.name)) }); err != nil {
			return err
		}
		co.publish(companyView{}) // out of memory, series too, once the job ends
		return nil
	})
}
