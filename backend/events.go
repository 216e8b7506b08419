package backend

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// Vault event types the engine sends. Subscribers filter on them; Vault adds
// the mount (plugin info) and prefixes the path fields with the mount path.
const (
	eventRenew          = "concur/renew"           // Concur issued a new access token
	eventRenewFail      = "concur/renew-fail"      // a renewal failed transiently; the engine backs off and retries
	eventNeedsBootstrap = "concur/needs-bootstrap" // Concur refused for good; an operator must write config
	eventConfigWrite    = "concur/config-write"
	eventConfigDelete   = "concur/config-delete"
)

// defaultCompany names the mount's only company in events and metrics, so
// that their schema stays when a mount serves many companies.
const defaultCompany = "default"

// statusNotConfigured is reported once config is deleted (or never written).
const statusNotConfigured = "not_configured"

// engineEvent is what one event says. None of it is secret.
type engineEvent struct {
	eventType string
	path      string // the API path the event concerns, relative to the mount
	operation string // "write", "delete" or "renew"
	status    string // the engine's status after the event
}

// sendEvent sends ev as a Vault event, best effort: Vault without an event
// sender (framework.ErrNoEvents) is normal; other errors are logged and
// never fail the operation that caused the event.
func (b *backend) sendEvent(ctx context.Context, ev engineEvent) {
	err := logical.SendEvent(ctx, b, ev.eventType,
		logical.EventMetadataPath, ev.path,
		logical.EventMetadataDataPath, ev.path,
		logical.EventMetadataOperation, ev.operation,
		logical.EventMetadataModified, "true",
		"company", defaultCompany,
		"status", ev.status,
	)
	// Across the plugin's gRPC boundary errors arrive as text.
	if err == nil || errors.Is(err, framework.ErrNoEvents) || strings.Contains(err.Error(), framework.ErrNoEvents.Error()) {
		return
	}
	b.Logger().Warn("sending a Vault event failed", "event_type", ev.eventType, "error", err)
}

// renewalDone reports a renewal grant that took took and ended with err
// (nil: Concur issued a token), as metrics and a Vault event.
func (b *backend) renewalDone(ctx context.Context, took time.Duration, err error) {
	b.metrics.renewal(took, err)
	b.sendEvent(ctx, renewalEvent(err))
}

// renewalEvent is the event for a renewal grant that returned err.
func renewalEvent(err error) engineEvent {
	ev := engineEvent{eventType: eventRenew, path: "creds", operation: "renew", status: statusOK}
	switch {
	case err == nil:
	case concur.RefusedForGood(err):
		ev.eventType, ev.status = eventNeedsBootstrap, statusNeedsBootstrap
	default:
		ev.eventType, ev.status = eventRenewFail, statusDegraded
	}
	return ev
}

// configWriteEvent is the event for a config write that stored st.
func configWriteEvent(st *engineState) engineEvent {
	status := st.Token.Status
	if status == "" {
		status = statusNeedsBootstrap
	}
	return engineEvent{eventType: eventConfigWrite, path: "config", operation: "write", status: status}
}

// configDeleteEvent is the event for a config delete.
func configDeleteEvent() engineEvent {
	return engineEvent{eventType: eventConfigDelete, path: "config", operation: "delete", status: statusNotConfigured}
}
