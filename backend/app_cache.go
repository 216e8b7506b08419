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

// errAppUnsaved: a company's tokens are stored, the app's settings that
// obtained them are not yet; they are held in memory and written first by
// the next token call or periodic pass.
var errAppUnsaved = errors.New("the company's tokens are stored; the app's settings are not yet (the write is retried)")

// appCache is the app's settings as the mount uses them: read from storage
// once, upgraded from v0.1.0's layout on a node that may write, and held in
// memory when a grant made with new settings succeeded but storage has not
// accepted them yet. Only its own methods take its lock.
type appCache struct {
	newClient func(allowedHosts []string) (*concur.Client, error)
	writeSafe func() bool
	log       func() hclog.Logger
	now       func() time.Time
	// changed is told about every change of the settings in use, after the
	// lock is released (the schedule follows refresh_margin).
	changed func(old, next appView)

	mu     sync.RWMutex
	loaded bool
	app    appView // entry nil: not configured
	// unsaved: app was adopted by a grant but storage has not accepted it.
	unsaved bool
	// legacy is v0.1.0's default company, served from memory where the
	// layout cannot be upgraded yet (a node that may not write, or an
	// earlier instance's grant in flight on it).
	legacy *companyEntry
	// legacyPending: the v0.1.0 entry waits for an earlier instance's grant
	// before it is upgraded; the app is read again on each use till then.
	legacyPending string
	// legacyMarker is when the v0.1.0 entry's marker was first seen.
	legacyMarker markerSighting
}

// load returns the app's settings, reading storage the first time and
// upgrading a v0.1.0 layout on a node that may write.
func (c *appCache) load(ctx context.Context, s logical.Storage) (appView, error) {
	c.mu.RLock()
	if c.loaded {
		app := c.app
		c.mu.RUnlock()
		return app, nil
	}
	c.mu.RUnlock()
	c.mu.Lock()
	if c.loaded {
		defer c.mu.Unlock()
		return c.app, nil
	}
	old := c.app
	entry, legacy, err := c.read(ctx, s)
	if err != nil {
		c.mu.Unlock()
		return appView{}, err
	}
	var app appView
	if entry != nil {
		if app.client, err = c.newClient(entry.AllowedHosts); err != nil {
			c.mu.Unlock()
			return appView{}, fmt.Errorf("stored allowed_hosts: %w", err)
		}
		app.entry = entry
	}
	c.app, c.legacy, c.loaded = app, legacy, c.legacyPending == ""
	c.mu.Unlock()
	c.changed(old, app)
	return app, nil
}

// read reads the app entry, upgrading v0.1.0's single entry when this node
// may write; otherwise the legacy company is returned to be served from
// memory. The caller holds mu.
func (c *appCache) read(ctx context.Context, s logical.Storage) (*appEntry, *companyEntry, error) {
	var old legacyState
	hasLegacy, err := getJSON(ctx, s, legacyStorageKey, &old)
	if err != nil {
		return nil, nil, err
	}
	c.legacyPending = ""
	if hasLegacy && c.writeSafe() {
		if until, live := c.legacyMarker.liveUntil(&old.Token, "", c.now(), c.log()); live {
			// Served from memory meanwhile: only its own grants and writes wait.
			c.legacyPending = until.UTC().Format(time.RFC3339)
		} else {
			app, err := upgradeLegacy(ctx, s, &old)
			if err != nil {
				return nil, nil, fmt.Errorf("upgrading the v0.1.0 storage layout: %w", err)
			}
			c.log().Info("storage upgraded from the v0.1.0 layout (settings and the default company in their own entries)")
			return app, nil, nil
		}
	}
	var app appEntry
	found, err := getJSON(ctx, s, appStorageKey, &app)
	switch {
	case err != nil:
		return nil, nil, err
	case found:
		return &app, nil, nil
	case hasLegacy:
		co := &companyEntry{CompanyUUID: old.Config.CompanyUUID, Prewarm: true, Token: old.Token}
		return &old.Config.appEntry, co, nil
	}
	return nil, nil, nil
}

func (c *appCache) current() appView {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.app
}

// margin is the refresh margin of kept-ready tokens.
func (c *appCache) margin() time.Duration {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.app.entry == nil {
		return defaultRefreshMargin
	}
	return c.app.entry.RefreshMargin
}

func (c *appCache) legacyDefault() *companyEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.legacy
}

// forget drops the cached settings so the next use reloads them.
func (c *appCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.unsaved {
		c.loaded, c.legacy = false, nil
	}
}

// save stores the app's settings and makes them current.
func (c *appCache) save(ctx context.Context, s logical.Storage, app appView) error {
	c.mu.RLock()
	pending := c.legacyPending
	c.mu.RUnlock()
	if pending != "" {
		// The upgrade would write v0.1.0's settings over these.
		return logical.CodedError(http.StatusServiceUnavailable, fmt.Sprintf(
			"an earlier instance of the engine has a Concur token call in flight; the storage upgrade, and changes "+
				"of the settings, wait for it (until %s)", pending))
	}
	if err := putJSON(ctx, s, appStorageKey, app.entry); err != nil {
		return err
	}
	c.publish(app, false)
	return nil
}

// adopt makes app current before it is stored: a grant made with it
// issued tokens, and they must be renewable with the settings that got
// them even if storage refuses the write for a while (see flush).
func (c *appCache) adopt(app appView) { c.publish(app, true) }

func (c *appCache) publish(app appView, unsaved bool) {
	c.mu.Lock()
	old := c.app
	c.app, c.loaded, c.unsaved = app, true, unsaved
	c.mu.Unlock()
	c.changed(old, app)
}

// flush writes adopted settings storage has not accepted yet.
func (c *appCache) flush(ctx context.Context, s logical.Storage) error {
	c.mu.RLock()
	app, unsaved := c.app, c.unsaved
	c.mu.RUnlock()
	if !unsaved {
		return nil
	}
	if err := putJSON(ctx, s, appStorageKey, app.entry); err != nil {
		return fmt.Errorf("%w: %w", errAppUnsaved, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.app.entry == app.entry {
		c.unsaved = false
	}
	return nil
}

// remove deletes the app's settings.
func (c *appCache) remove(ctx context.Context, s logical.Storage) error {
	if err := s.Delete(ctx, appStorageKey); err != nil {
		return err
	}
	c.mu.Lock()
	old := c.app
	c.app, c.loaded, c.legacy = appView{}, true, nil
	c.mu.Unlock()
	c.changed(old, appView{})
	return nil
}
