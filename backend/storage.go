package backend

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Storage layout: the app's settings in one entry, each company's token
// state in its own. Every entry is seal-wrapped (see PathsSpecial) and
// replicated, so standbys can serve creds from them.
const (
	appStorageKey        = "app"
	companyStoragePrefix = "companies/"
	// legacyStorageKey is v0.1.0's single entry (settings and the one
	// company's tokens together). It is upgraded on first load (see
	// loadApp) and then deleted.
	legacyStorageKey = "config"
)

// defaultCompanyName is the company of the root paths (config, creds,
// rotate, profile): the one a single-company mount has. It is also
// companies/default, and names that company in metrics and events.
const defaultCompanyName = "default"

// companyName is what a company may be called: a short path segment, so a
// company UUID is a fine name. Names become storage keys, so nothing else
// gets through.
var companyName = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?$`)

func validCompanyName(name string) bool { return companyName.MatchString(name) }

func companyStorageKey(name string) string { return companyStoragePrefix + name }

// Engine states reported by config and companies/<name> read.
const (
	statusOK             = "ok"
	statusDegraded       = "degraded"        // last refresh failed transiently; retrying with backoff
	statusNeedsBootstrap = "needs_bootstrap" // no usable refresh token: write a new request or refresh token
)

// appEntry is the app registered with Concur: what every company's grants
// use. Secrets are plain strings here because storage needs the values;
// they never leave through a read.
type appEntry struct {
	ClientID      string        `json:"client_id"`
	ClientSecret  string        `json:"client_secret"`
	BaseURL       string        `json:"base_url"`
	AllowedHosts  []string      `json:"allowed_hosts"`
	RefreshMargin time.Duration `json:"refresh_margin"`
	// MetricsDetail is metricsDetailAttention ("" before it existed) or
	// metricsDetailFull.
	MetricsDetail string `json:"metrics_detail,omitempty"`
}

// companyEntry is one connected company. Values are never modified once
// published in memory: changes build a copy.
type companyEntry struct {
	CompanyUUID string `json:"company_uuid"`
	// Prewarm keeps an access token ready at all times (renewed before it
	// expires); without it tokens are obtained on first use, and the refresh
	// token is kept alive by keep-alive grants.
	Prewarm bool       `json:"prewarm"`
	Token   tokenEntry `json:"token"`
}

// tokenEntry is a company's state with Concur: the newest tokens Concur gave
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
	// LastErrorCode is LastError's short code (see failureCode).
	LastErrorCode string `json:"last_error_code,omitempty"`
	// Failures counts consecutive transient failures; NextAttemptAt is when
	// automatic renewal may try again.
	Failures      int       `json:"failures,omitempty"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	// RefreshRenewedAt is when a grant was last made for the refresh
	// token's sake (keep-alive, or its expiry near).
	RefreshRenewedAt time.Time `json:"refresh_renewed_at"`
	// AnswerWarning names the fields of Concur's last token answer that
	// were unusable (field names only); "" after a clean answer. A string,
	// not a list, so that the entry stays comparable.
	AnswerWarning string `json:"answer_warning,omitempty"`
	// Grant is the write-ahead marker of a grant in flight (see grantMarker).
	Grant *grantMarker `json:"grant_in_flight,omitempty"`
}

// legacyState is v0.1.0's single entry.
type legacyState struct {
	Config legacyConfig `json:"config"`
	Token  tokenEntry   `json:"token"`
}

type legacyConfig struct {
	appEntry
	CompanyUUID string `json:"company_uuid"`
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

// upgradeLegacy moves v0.1.0's single entry into the app entry and the
// default company's, on a node that may write storage. The company goes
// first (it holds the refresh token), the legacy entry last, so a crash in
// between repeats the upgrade. A legacy token newer than the default
// company's stored one (written by an old instance after an earlier
// upgrade) wins: the newest refresh token is the one Concur honours.
func upgradeLegacy(ctx context.Context, s logical.Storage, old *legacyState) (*appEntry, error) {
	var co companyEntry
	found, err := getJSON(ctx, s, companyStorageKey(defaultCompanyName), &co)
	if err != nil {
		return nil, err
	}
	legacyWins := !found || old.Token.LastRefreshAt.After(co.Token.LastRefreshAt)
	if legacyWins {
		co = companyEntry{CompanyUUID: old.Config.CompanyUUID, Prewarm: true, Token: old.Token}
		if err := putJSON(ctx, s, companyStorageKey(defaultCompanyName), &co); err != nil {
			return nil, err
		}
	}
	var app appEntry
	hasApp, err := getJSON(ctx, s, appStorageKey, &app)
	if err != nil {
		return nil, err
	}
	if legacyWins || !hasApp {
		// The settings go with the token they obtained.
		app = old.Config.appEntry
		if err := putJSON(ctx, s, appStorageKey, &app); err != nil {
			return nil, err
		}
	}
	if err := s.Delete(ctx, legacyStorageKey); err != nil {
		return nil, fmt.Errorf("deleting the upgraded %s entry: %w", legacyStorageKey, err)
	}
	return &app, nil
}
