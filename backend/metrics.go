package backend

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// Grant types and outcomes as metric label values.
const (
	grantRefresh  = "refresh_token" // renewals, and bootstraps from a refresh token
	grantExchange = "password"      // a company request token exchanged for a refresh token

	outcomeOK      = "ok"
	outcomeRefused = "refused" // Concur refused for good: needs_bootstrap
	outcomeFailed  = "failed"  // transient or on our side: backs off and retries
	// outcomeUnknown: Concur answered 2xx (the grant happened) with a body
	// that could not be read; not a failure to retry with the same token.
	outcomeUnknown = "outcome_unknown"
)

// metricsNamespace prefixes every series the engine reports.
const metricsNamespace = "vault_concur"

// latencyBuckets span a cached read (well under a millisecond) to a renewal
// that waits out retries (tens of seconds).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// metrics are one mount's Prometheus series, in a registry of its own: one
// plugin process serves many mounts, and each mount reports only its own.
// Labels never carry a secret or anything a caller chose (no user ids).
type metrics struct {
	registry *prometheus.Registry

	grants         *prometheus.CounterVec   // company, grant_type, outcome, code
	renewalSeconds *prometheus.HistogramVec // company, outcome
	grantsWaiting  *prometheus.GaugeVec     // company
	requests       *prometheus.CounterVec   // company, path, outcome
	requestSeconds *prometheus.HistogramVec // company, path, outcome
	concurCalls    *prometheus.CounterVec   // company, endpoint, code

	// Set from the engine's state at each scrape.
	accessExpiresIn  *prometheus.GaugeVec // company
	refreshExpiresIn *prometheus.GaugeVec // company
	status           *prometheus.GaugeVec // company, status
	failures         *prometheus.GaugeVec // company
	lastRenewal      *prometheus.GaugeVec // company
}

func newMetrics() *metrics {
	company := []string{"company"}
	m := &metrics{
		registry: prometheus.NewRegistry(),
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "grants_total",
			Help: "Token grants attempted with Concur, by grant type, outcome (ok, refused, failed, outcome_unknown) " +
				"and Concur error code (none without one).",
		}, []string{"company", "grant_type", "outcome", "code"}),
		renewalSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "renewal_duration_seconds", Buckets: latencyBuckets,
			Help: "Duration of renewals (refresh grants by the engine, retries included), by outcome.",
		}, []string{"company", "outcome"}),
		grantsWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "grants_waiting",
			Help: "Renewals waiting for the renewal lock (one token call at a time per company).",
		}, company),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "requests_total",
			Help: "Requests to creds and profile paths, by path and outcome (ok, client_error, server_error, forwarded).",
		}, []string{"company", "path", "outcome"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "request_duration_seconds", Buckets: latencyBuckets,
			Help: "Time the engine took to answer creds and profile requests, by path and outcome.",
		}, []string{"company", "path", "outcome"}),
		concurCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "concur_requests_total",
			Help: "HTTP requests to Concur, by endpoint (token, identity, connections, other) and status class (2xx..5xx, error: no answer).",
		}, []string{"company", "endpoint", "code"}),
		accessExpiresIn: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "access_token_expires_in_seconds",
			Help: "Seconds until the stored access token expires (negative once expired).",
		}, company),
		refreshExpiresIn: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "refresh_token_expires_in_seconds",
			Help: "Seconds until the stored refresh token expires, as Concur last reported (absent when unknown).",
		}, company),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "status",
			Help: "1 for the engine's current status (ok, degraded, needs_bootstrap, not_configured), 0 for the others.",
		}, []string{"company", "status"}),
		failures: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "renewal_consecutive_failures",
			Help: "Transient renewal failures since the last success.",
		}, company),
		lastRenewal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "last_renewal_timestamp_seconds",
			Help: "When the served access token was obtained (Unix time).",
		}, company),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Name: "build_info", ConstLabels: prometheus.Labels{"version": Version},
		Help: "The plugin's version; always 1.",
	})
	buildInfo.Set(1)
	m.registry.MustRegister(m.grants, m.renewalSeconds, m.grantsWaiting, m.requests, m.requestSeconds, m.concurCalls,
		m.accessExpiresIn, m.refreshExpiresIn, m.status, m.failures, m.lastRenewal, buildInfo,
		// The plugin's own process: each Vault node runs one, so figures are per node.
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	m.grantsWaiting.WithLabelValues(defaultCompanyName).Set(0)
	return m
}

// grant counts one token grant Concur answered with err (nil: success).
func (m *metrics) grant(company, grantType string, err error) {
	outcome, code := grantOutcome(err)
	m.grants.WithLabelValues(company, grantType, outcome, code).Inc()
}

// renewal counts one renewal by the engine that took took and ended with err.
func (m *metrics) renewal(company string, took time.Duration, err error) {
	m.grant(company, grantRefresh, err)
	outcome, _ := grantOutcome(err)
	m.renewalSeconds.WithLabelValues(company, outcome).Observe(took.Seconds())
}

// grantOutcome classifies a grant's result the way the engine acts on it.
func grantOutcome(err error) (outcome, code string) {
	code = "none"
	var ce *concur.Error
	if errors.As(err, &ce) && ce.Code != 0 {
		code = "other" // a code Concur's table does not have: not a label value of its own
		if _, known := concur.LookupOAuthCode(ce.Code); known {
			code = strconv.Itoa(ce.Code)
		}
	}
	switch {
	case err == nil:
		return outcomeOK, code
	case concur.RefusedForGood(err):
		return outcomeRefused, code
	case concur.IsGrantOutcomeUnknown(err):
		return outcomeUnknown, code
	default:
		return outcomeFailed, code
	}
}

// waitingForGrant counts a caller waiting for the renewal lock; call the
// function it returns once the lock is held.
func (m *metrics) waitingForGrant(company string) (acquired func()) {
	g := m.grantsWaiting.WithLabelValues(company)
	g.Inc()
	return g.Dec
}

// request counts one answer of path (creds or profile) and its latency.
func (m *metrics) request(company, path string, took time.Duration, resp *logical.Response, err error) {
	outcome := requestOutcome(resp, err)
	m.requests.WithLabelValues(company, path, outcome).Inc()
	m.requestSeconds.WithLabelValues(company, path, outcome).Observe(took.Seconds())
}

// requestOutcome sorts an answer as its HTTP status would: 4xx are the
// caller's (or the engine's setup), 5xx upstream or internal trouble.
func requestOutcome(resp *logical.Response, err error) string {
	switch {
	case isReadOnly(err):
		return "forwarded" // Vault sends it to the node that may write
	case clientCoded(err):
		return "client_error"
	case err != nil:
		if errors.Is(err, logical.ErrInvalidRequest) || errors.Is(err, logical.ErrPermissionDenied) {
			return "client_error"
		}
		return "server_error"
	case resp != nil && resp.IsError():
		return "client_error"
	}
	return outcomeOK
}

// clientCoded: err carries a 4xx status. Its own function so that the
// target errors.As needs is allocated only when there is an error, not on
// every request.
func clientCoded(err error) bool {
	if err == nil {
		return false
	}
	var coded logical.HTTPCodedError
	return errors.As(err, &coded) && coded.Code() < 500
}

// observeState sets the state gauges from the companies' views (none:
// not configured) at now.
func (m *metrics) observeState(views map[string]companyView, now time.Time) {
	m.status.Reset()
	m.accessExpiresIn.Reset()
	m.refreshExpiresIn.Reset()
	m.failures.Reset()
	m.lastRenewal.Reset()
	if len(views) == 0 {
		views = map[string]companyView{defaultCompanyName: {}}
	}
	for name, v := range views {
		m.observeCompany(name, v, now)
	}
}

func (m *metrics) observeCompany(name string, v companyView, now time.Time) {
	status := companyResponseData(v)["status"].(string)
	for _, s := range []string{statusOK, statusDegraded, statusNeedsBootstrap, statusNotConfigured} {
		v := 0.0
		if s == status {
			v = 1
		}
		m.status.WithLabelValues(name, s).Set(v)
	}
	if v.entry == nil {
		return
	}
	t := v.entry.Token
	if t.AccessToken != "" {
		m.accessExpiresIn.WithLabelValues(name).Set(t.ExpiresAt.Sub(now).Seconds())
	}
	if t.RefreshToken != "" && !t.RefreshExpiresAt.IsZero() {
		m.refreshExpiresIn.WithLabelValues(name).Set(t.RefreshExpiresAt.Sub(now).Seconds())
	}
	if !t.LastRefreshAt.IsZero() {
		m.lastRenewal.WithLabelValues(name).Set(float64(t.LastRefreshAt.UnixNano()) / 1e9)
	}
	m.failures.WithLabelValues(name).Set(float64(t.Failures))
}

// instrument returns a client that counts each request to Concur by
// endpoint and status class, sending it through c's transport.
func (m *metrics) instrument(c *http.Client) *http.Client {
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	out := *c
	out.Transport = &countingTransport{next: next, calls: m.concurCalls}
	return &out
}

// countingTransport counts requests; it never looks at bodies or headers.
type countingTransport struct {
	next  http.RoundTripper
	calls *prometheus.CounterVec
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode/100) + "xx"
	}
	t.calls.WithLabelValues(companyOfRequest(r.Context()), concurEndpoint(r.URL.Path), code).Inc()
	return resp, err
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (t *countingTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// concurEndpoint names the Concur API a path belongs to, from a fixed set:
// paths carry user ids, which must not become labels.
func concurEndpoint(path string) string {
	switch {
	case path == "/oauth2/v0/token":
		return "token"
	case strings.HasPrefix(path, "/profile/identity/"):
		return "identity"
	case strings.HasPrefix(path, "/app-mgmt/v0/connections"):
		return "connections"
	}
	return "other"
}

// forgetCompany drops a deleted company's series, so that the plugin's
// memory follows the companies it has, not every one it ever had.
func (m *metrics) forgetCompany(name string) {
	only := prometheus.Labels{"company": name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.grants, m.renewalSeconds, m.grantsWaiting, m.requests, m.requestSeconds, m.concurCalls,
	} {
		v.DeletePartialMatch(only)
	}
}

// companyKey carries the name of the company a Concur call is made for, so
// that the counting transport can label it.
type companyKey struct{}

func withCompany(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, companyKey{}, name)
}

func companyOfRequest(ctx context.Context) string {
	if name, ok := ctx.Value(companyKey{}).(string); ok {
		return name
	}
	return defaultCompanyName
}
