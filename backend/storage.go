package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// stateStorageKey holds the whole engine state: settings and tokens in one
// entry, so a new refresh token and the settings it belongs to are written
// together or not at all. It is seal-wrapped (see PathsSpecial) and
// replicated, so standbys can serve creds from it.
const stateStorageKey = "config"

// Engine states reported by config read.
const (
	statusOK             = "ok"
	statusDegraded       = "degraded"        // last refresh failed transiently; retrying with backoff
	statusNeedsBootstrap = "needs_bootstrap" // no usable refresh token: write config again
)

// configEntry is what `config` stores. Secrets are plain strings here because
// storage needs the values; they never leave through a read.
type configEntry struct {
	ClientID      string        `json:"client_id"`
	ClientSecret  string        `json:"client_secret"`
	CompanyUUID   string        `json:"company_uuid"`
	BaseURL       string        `json:"base_url"`
	AllowedHosts  []string      `json:"allowed_hosts"`
	RefreshMargin time.Duration `json:"refresh_margin"`
}

// engineState is the single stored entry. Values are never modified once
// published in memory: changes build a copy.
type engineState struct {
	Config configEntry `json:"config"`
	Token  tokenEntry  `json:"token"`
}

// tokenEntry is the engine's state with Concur: the newest tokens Concur gave
// us and what happened on the last attempt to renew them.
type tokenEntry struct {
	AccessToken      string    `json:"access_token"`
	TokenType        string    `json:"token_type"`
	ExpiresAt        time.Time `json:"expires_at"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
	Geolocation      string    `json:"geolocation"`
	Scope            string    `json:"scope"`
	LastRefreshAt    time.Time `json:"last_refresh_at"`

	// Status is statusOK, statusDegraded or statusNeedsBootstrap.
	Status string `json:"status"`
	// LastError describes the last failed attempt (never a secret); "" after a success.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at"`
	// Failures counts consecutive transient failures; NextAttemptAt is when
	// automatic renewal may try again.
	Failures      int       `json:"failures,omitempty"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	// RefreshRenewedAt is when a renewal was last made for the refresh
	// token's sake (its expiry near), at most once a day.
	RefreshRenewedAt time.Time `json:"refresh_renewed_at"`
	// AnswerWarning names the fields of Concur's last token answer that
	// were unusable (field names only); "" after a clean answer. A string,
	// not a list, so that the entry stays comparable.
	AnswerWarning string `json:"answer_warning,omitempty"`
	// Grant is the write-ahead marker of a grant in flight (see grantMarker).
	Grant *grantMarker `json:"grant_in_flight,omitempty"`
}

func getJSON(ctx context.Context, s logical.Storage, key string, out any) (bool, error) {
	e, err := s.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("reading %s from storage: %w", key, err)
	}
	if e == nil {
		return false, nil
	}
	if err := e.DecodeJSON(out); err != nil {
		return false, fmt.Errorf("decoding %s from storage: %w", key, err)
	}
	return true, nil
}

func putJSON(ctx context.Context, s logical.Storage, key string, v any) error {
	e, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	e.SealWrap = true
	if err := s.Put(ctx, e); err != nil {
		return fmt.Errorf("writing %s to storage: %w", key, err)
	}
	return nil
}
