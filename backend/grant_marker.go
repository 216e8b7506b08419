package backend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	hclog "github.com/hashicorp/go-hclog"
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

// maxMarkerLife is the longest a marker is live after this instance first
// saw it, whatever deadline it carries: no grant and its write take longer.
// A later deadline comes from a clock ahead of ours or a damaged entry.
const maxMarkerLife = grantTimeout + markerSlack

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

// markerSighting is when a foreign marker was first seen (its owner locks it).
type markerSighting struct {
	marker grantMarker
	at     time.Time
}

func (m grantMarker) same(o *grantMarker) bool {
	return m.RefreshToken == o.RefreshToken && m.Instance == o.Instance && m.Until.Equal(o.Until)
}

// foreignMarker is t's marker if another instance (not self; "" counts
// every instance as another) wrote it for t's current refresh token.
func foreignMarker(t *tokenEntry, self string) *grantMarker {
	m := t.Grant
	if m == nil || (self != "" && m.Instance == self) || m.RefreshToken != tokenFingerprint(t.RefreshToken) {
		return nil
	}
	return m
}

// liveUntil says whether t carries another instance's live marker for its
// current refresh token, and until when: its deadline, capped at
// maxMarkerLife after it was first seen (said once in the log).
func (s *markerSighting) liveUntil(t *tokenEntry, self string, now time.Time, log hclog.Logger) (time.Time, bool) {
	m := foreignMarker(t, self)
	if m == nil {
		return time.Time{}, false
	}
	if !s.marker.same(m) {
		s.marker, s.at = *m, now
		if m.Until.After(now.Add(maxMarkerLife)) {
			log.Warn("a write-ahead marker's deadline is later than any token call lasts (a clock ahead of this node's, "+
				"or a damaged entry); treating it as ending earlier",
				"marker_until", m.Until.UTC().Format(time.RFC3339), "treated_as", now.Add(maxMarkerLife).UTC().Format(time.RFC3339))
		}
	}
	until := earliest(m.Until, s.at.Add(maxMarkerLife))
	return until, now.Before(until)
}

// foreignGrantLive: t carries another instance's live marker for its
// current refresh token. The caller holds mu.
func (co *company) foreignGrantLiveLocked(t *tokenEntry) bool {
	_, live := co.markerSeen.liveUntil(t, co.deps.instance, co.deps.now(), co.log())
	return live
}

// checkMarker refuses to present t's refresh token while another
// instance's marker for it is live.
func (co *company) checkMarker(t *tokenEntry) error {
	co.mu.Lock()
	until, live := co.markerSeen.liveUntil(t, co.deps.instance, co.deps.now(), co.log())
	co.mu.Unlock()
	m := foreignMarker(t, co.deps.instance)
	switch {
	case m == nil:
		return nil
	case live:
		return logical.CodedError(http.StatusServiceUnavailable, fmt.Sprintf(
			"another instance of the engine (before a plugin reload or a leader change) has a Concur token call in flight "+
				"for the current refresh token; not presenting it again before %s", until.UTC().Format(time.RFC3339)))
	}
	co.log().Warn("an earlier instance's Concur token call ended without a stored outcome; going ahead with the stored refresh token "+
		"(if Concur processed that call under strict rotation, it now refuses the token with its code)",
		"marker_until", m.Until.UTC().Format(time.RFC3339))
	return nil
}

// markGrant stores e with a marker for the grant about to be made and
// returns the marked entry. Without the marker stored there is no grant:
// storage that refuses writes could not keep its result either.
func (co *company) markGrant(ctx context.Context, s logical.Storage, e *companyEntry) (*companyEntry, error) {
	next := *e
	next.Token.Grant = &grantMarker{
		RefreshToken: tokenFingerprint(e.Token.RefreshToken),
		Until:        co.deps.now().Add(maxMarkerLife),
		Instance:     co.deps.instance,
	}
	if err := co.saveState(ctx, s, &next); err != nil {
		return nil, fmt.Errorf("not calling Concur: storage refused the note of the token call about to be made: %w", err)
	}
	return &next, nil
}
