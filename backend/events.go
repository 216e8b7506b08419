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

// statusNotConfigured is reported once config is deleted (or never written).
const statusNotConfigured = "not_configured"

// statusUnreadable is reported for a company whose stored entry cannot be
// decoded (see company.readLocked).
const statusUnreadable = "unreadable"

// engineEvent is what one event says. None of it is secret.
type engineEvent struct {
	eventType string
	company   string // the company's name on the mount
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
		"company", ev.company,
		"status", ev.status,
	)
	// Across the plugin's gRPC boundary errors arrive as text.
	if err == nil || errors.Is(err, framework.ErrNoEvents) || strings.Contains(err.Error(), framework.ErrNoEvents.Error()) {
		return
	}
	b.Logger().Warn("sending a Vault event failed", "event_type", ev.eventType, "error", err)
}

// renewalDone reports a renewal grant of the company called name that took
// took and ended with err (nil: Concur issued a token), as metrics and a
// Vault event.
func (b *backend) renewalDone(ctx context.Context, name string, took time.Duration, err error) {
	b.metrics.renewal(took, err)
	b.sendEvent(ctx, renewalEvent(name, err))
}

// renewalEvent is the event for a renewal grant of company name that returned err.
func renewalEvent(name string, err error) engineEvent {
	ev := engineEvent{eventType: eventRenew, company: name, path: companyPath(name, "creds"), operation: "renew", status: statusOK}
	switch {
	case err == nil:
	case concur.RefusedForGood(err):
		ev.eventType, ev.status = eventNeedsBootstrap, statusNeedsBootstrap
	default:
		ev.eventType, ev.status = eventRenewFail, statusDegraded
	}
	return ev
}

// companyWriteEvent is the event for a write of path that stored e for
// company name (nil: the app's settings alone).
func companyWriteEvent(name, path string, e *companyEntry) engineEvent {
	status := statusNotConfigured
	if e != nil {
		status = viewStatus(companyView{entry: e})
	}
	return engineEvent{eventType: eventConfigWrite, company: name, path: path, operation: "write", status: status}
}

// configDeleteEvent is the event for a config delete.
func configDeleteEvent() engineEvent {
	return engineEvent{eventType: eventConfigDelete, company: defaultCompanyName, path: "config", operation: "delete",
		status: statusNotConfigured}
}

// companyDeleteEvent is the event for a delete of companies/<name>.
func companyDeleteEvent(name string) engineEvent {
	return engineEvent{eventType: eventConfigDelete, company: name, path: companyPath(name, ""), operation: "delete",
		status: statusNotConfigured}
}

// companyPath is the API path of a company's leaf (creds, ...; "" for the
// company itself), as events name it.
func companyPath(name, leaf string) string {
	switch {
	case name == defaultCompanyName && leaf == "":
		return "config"
	case name == defaultCompanyName:
		return leaf
	case leaf == "":
		return "companies/" + name
	}
	return strings.Join([]string{"companies", name, leaf}, "/")
}
