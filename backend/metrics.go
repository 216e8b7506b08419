package backend

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

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
// The counters are mount-wide: no series per company, so a scrape costs the
// same with 1 or 10,000 companies. Companies are named only by the state
// series computed at each scrape (see gather), never by a value a caller
// chose, and never a secret.
type metrics struct {
	registry *prometheus.Registry
	state    stateDescs

	grants         *prometheus.CounterVec   // grant_type, outcome, code
	renewalSeconds *prometheus.HistogramVec // outcome
	grantsWaiting  prometheus.Gauge
	requests       *prometheus.CounterVec   // path, outcome
	requestSeconds *prometheus.HistogramVec // path, outcome
	concurCalls    *prometheus.CounterVec   // endpoint, code
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		state:    newStateDescs(),
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "grants_total",
			Help: "Token grants attempted with Concur, by grant type, outcome (ok, refused, failed, outcome_unknown) " +
				"and Concur error code (none without one).",
		}, []string{"grant_type", "outcome", "code"}),
		renewalSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "renewal_duration_seconds", Buckets: latencyBuckets,
			Help: "Duration of renewals (refresh grants by the engine, retries included), by outcome.",
		}, []string{"outcome"}),
		grantsWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "grants_waiting",
			Help: "Renewals waiting for a company's renewal lock (one token call at a time per company).",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "requests_total",
			Help: "Requests to creds and profile paths, by path and outcome (ok, client_error, server_error, forwarded).",
		}, []string{"path", "outcome"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "request_duration_seconds", Buckets: latencyBuckets,
			Help: "Time the engine took to answer creds and profile requests, by path and outcome.",
		}, []string{"path", "outcome"}),
		concurCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "concur_requests_total",
			Help: "HTTP requests to Concur, by endpoint (token, identity, connections, other) and status class (2xx..5xx, error: no answer).",
		}, []string{"endpoint", "code"}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Name: "build_info", ConstLabels: prometheus.Labels{"version": Version},
		Help: "The plugin's version; always 1.",
	})
	buildInfo.Set(1)
	m.registry.MustRegister(m.grants, m.renewalSeconds, m.grantsWaiting, m.requests, m.requestSeconds, m.concurCalls, buildInfo,
		// The plugin's own process: each Vault node runs one, so figures are per node.
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return m
}

// gather is one scrape: the counters, and the state series computed now
// from the companies' views (nil: the app is not configured) with the
// mount's metrics_detail. Nothing of the views is kept: a deleted company
// is simply not in the next scrape.
func (m *metrics) gather(views map[string]companyView, detail string, now time.Time) ([]*dto.MetricFamily, error) {
	state := prometheus.NewRegistry()
	if err := state.Register(&stateCollector{descs: &m.state, state: summarize(views, detail, now)}); err != nil {
		return nil, err
	}
	return prometheus.Gatherers{m.registry, state}.Gather()
}

// grant counts one token grant Concur answered with err (nil: success).
// The company is not a label: the state series name the companies that
// need an operator.
func (m *metrics) grant(grantType string, err error) {
	outcome, code := grantOutcome(err)
	m.grants.WithLabelValues(grantType, outcome, code).Inc()
}

// renewal counts one renewal by the engine that took took and ended with err.
func (m *metrics) renewal(took time.Duration, err error) {
	m.grant(grantRefresh, err)
	outcome, _ := grantOutcome(err)
	m.renewalSeconds.WithLabelValues(outcome).Observe(took.Seconds())
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

// waitingForGrant counts a caller waiting for a company's renewal lock;
// call the function it returns once the lock is held.
func (m *metrics) waitingForGrant() (acquired func()) {
	m.grantsWaiting.Inc()
	return m.grantsWaiting.Dec
}

// request counts one answer of path (creds or profile) and its latency.
func (m *metrics) request(path string, took time.Duration, resp *logical.Response, err error) {
	outcome := requestOutcome(resp, err)
	m.requests.WithLabelValues(path, outcome).Inc()
	m.requestSeconds.WithLabelValues(path, outcome).Observe(took.Seconds())
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
	t.calls.WithLabelValues(concurEndpoint(r.URL.Path), code).Inc()
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
