package backend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// grantMarker is the write-ahead note "a grant is in flight for this
// refresh token": stored before every refresh grant and cleared by the
// write that stores its result (or its failure). A new instance of the
// engine (after a plugin reload or a step-down) that finds a live marker
// for the token it would present does not present it until the marker's
// deadline: the old instance may still be rotating it.
//
// An expired marker whose token is still the stored one means the old
// instance ended without storing an outcome. The engine then goes ahead
// with a warning in the log: either that grant never reached Concur (the
// token is fine) or its answer was lost, in which case under strict rotation
// Concur answers with its coded refusal (108) and the engine reports
// needs_bootstrap, as for any refresh token Concur no longer honours.
type grantMarker struct {
	// RefreshToken is a fingerprint of the presented token, never the token.
	RefreshToken string    `json:"refresh_token_sha256"`
	Until        time.Time `json:"until"`
	Instance     string    `json:"instance"`
}

// tokenFingerprint is a truncated SHA-256 of a token: enough to tell tokens
// apart, useless for presenting one.
func tokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

func newInstanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// foreignGrantLive: t carries another instance's live marker for its
// current refresh token.
func (ts *tokenStore) foreignGrantLive(t *tokenEntry) bool {
	if t == nil || t.Grant == nil {
		return false
	}
	m := t.Grant
	return m.Instance != ts.instance && m.RefreshToken == tokenFingerprint(t.RefreshToken) && ts.b.now().Before(m.Until)
}

// checkMarker refuses to present t's refresh token while another
// instance's marker for it is live.
func (ts *tokenStore) checkMarker(name string, t *tokenEntry) error {
	m := t.Grant
	if m == nil || m.Instance == ts.instance || m.RefreshToken != tokenFingerprint(t.RefreshToken) {
		return nil
	}
	if ts.foreignGrantLive(t) {
		return logical.CodedError(http.StatusServiceUnavailable, fmt.Sprintf(
			"another instance of the engine (before a plugin reload or a leader change) has a Concur token call in flight "+
				"for the current refresh token; not presenting it again before %s", m.Until.UTC().Format(time.RFC3339)))
	}
	ts.b.Logger().Warn("an earlier instance's Concur token call ended without a stored outcome; going ahead with the stored refresh token "+
		"(if Concur processed that call under strict rotation, it now refuses the token with its code)",
		"company", name, "marker_until", m.Until.UTC().Format(time.RFC3339))
	return nil
}

// markGrant stores e with a marker for the grant about to be made and
// returns the marked entry. Without the marker stored there is no grant:
// storage that refuses writes could not keep its result either.
func (co *company) markGrant(ctx context.Context, s logical.Storage, e *companyEntry) (*companyEntry, error) {
	next := *e
	next.Token.Grant = &grantMarker{
		RefreshToken: tokenFingerprint(e.Token.RefreshToken),
		Until:        co.store.b.now().Add(grantTimeout + markerSlack),
		Instance:     co.store.instance,
	}
	if err := co.saveState(ctx, s, &next); err != nil {
		return nil, fmt.Errorf("not calling Concur: storage refused the note of the token call about to be made: %w", err)
	}
	return &next, nil
}
