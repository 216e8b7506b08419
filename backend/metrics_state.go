package backend

import (
	"cmp"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The state series: computed at each scrape from the companies' views.
// Mount-wide series cost the same for any number of companies; series
// labelled by company exist only for companies that need an operator (at
// most maxNamedCompanies, those that lapse soonest first), or for every
// company when the mount's metrics_detail is "full".
const (
	metricsDetailAttention = "attention" // the default
	metricsDetailFull      = "full"

	// attentionWindow: a refresh token expiring within it needs an
	// operator (the ConcurRefreshTokenExpiring alert's threshold).
	attentionWindow = 14 * 24 * time.Hour
	// maxNamedCompanies caps the companies named in the attention mode.
	maxNamedCompanies = 100
)

// refreshLeftBuckets (seconds) bucket the refresh tokens' time left, in
// days: a renewed token has about six months.
var refreshLeftBuckets = func() []float64 {
	var out []float64
	for _, days := range []float64{1, 3, 7, 14, 30, 60, 90, 120, 150, 180} {
		out = append(out, days*86400)
	}
	return out
}()

var allStatuses = []string{statusOK, statusDegraded, statusNeedsBootstrap, statusUnreadable, statusNotConfigured}

// stateDescs describe the state series (immutable once built).
type stateDescs struct {
	companies, attention, backlog, accessExpiry, refreshExpiry, refreshLeft *prometheus.Desc
	// Per company.
	status, companyAccess, companyRefresh, failures, lastRenewal *prometheus.Desc
}

func newStateDescs() stateDescs {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, "", name), help, labels, nil)
	}
	company := "company"
	return stateDescs{
		companies: desc("companies", "Companies by status (ok, degraded, needs_bootstrap, unreadable: a stored entry "+
			"that cannot be decoded); not_configured is 1 when the mount serves no company.", "status"),
		attention: desc("companies_needing_attention", "Companies that need an operator: status not ok, or a refresh "+
			"token expiring within 14 days (the company_* series name at most 100 of them)."),
		backlog: desc("renewal_backlog", "Companies past their periodic renewal's due time (keep-alive, refresh token "+
			"near expiry, or a kept-ready access token expired) and not yet renewed."),
		accessExpiry: desc("access_token_expiry_timestamp_seconds", "Soonest expiry of a kept-ready (prewarm) company's "+
			"access token (Unix time); absent without one."),
		refreshExpiry: desc("refresh_token_expiry_timestamp_seconds", "Soonest expiry of a live refresh token "+
			"(companies not needing a bootstrap; Unix time), as Concur last reported; absent without one."),
		refreshLeft: desc("refresh_token_remaining_seconds", "Live refresh tokens by time left until they expire, "+
			"as Concur last reported (buckets in days: 1, 3, 7, 14, 30, 60, 90, 120, 150, 180)."),
		status: desc("company_status", "1 for a named company's status (one series per named company).",
			company, "status"),
		companyAccess: desc("company_access_token_expiry_timestamp_seconds",
			"When a named company's access token expires (Unix time); absent without one.", company),
		companyRefresh: desc("company_refresh_token_expiry_timestamp_seconds",
			"When a named company's refresh token expires (Unix time), as Concur last reported; absent when unknown.", company),
		failures: desc("company_renewal_consecutive_failures",
			"A named company's transient renewal failures since its last success.", company),
		lastRenewal: desc("company_last_renewal_timestamp_seconds",
			"When a named company's current tokens were obtained (Unix time).", company),
	}
}

func (d *stateDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.companies, d.attention, d.backlog, d.accessExpiry, d.refreshExpiry, d.refreshLeft,
		d.status, d.companyAccess, d.companyRefresh, d.failures, d.lastRenewal}
}

// stateSummary is what one scrape reports of the companies: counts, the
// soonest expiries, and the few companies it names.
type stateSummary struct {
	byStatus       map[string]int
	attention      int
	backlog        int
	soonestAccess  time.Time
	soonestRefresh time.Time
	refreshLeft    map[float64]uint64 // cumulative bucket counts
	refreshCount   uint64
	refreshSum     float64
	named          []companyState
}

// companyState is a named company's series.
type companyState struct {
	name                         string
	status                       string
	lapse                        time.Time // when it stops being servable; zero: already
	access, refresh, lastRenewal time.Time
	failures                     int
}

// summarize computes the state series of views at now.
func summarize(views map[string]companyView, detail string, now time.Time) stateSummary {
	s := stateSummary{byStatus: map[string]int{}, refreshLeft: map[float64]uint64{}}
	for _, le := range refreshLeftBuckets {
		s.refreshLeft[le] = 0 // every bucket is reported, empty ones too
	}
	if len(views) == 0 {
		s.byStatus[statusNotConfigured] = 1
	}
	var attention []companyState
	for name, v := range views {
		c := newCompanyState(name, v)
		s.add(c, v, now)
		needs := c.status != statusOK || (!c.refresh.IsZero() && c.refresh.Sub(now) < attentionWindow)
		if needs {
			s.attention++
		}
		switch {
		case detail == metricsDetailFull:
			s.named = append(s.named, c)
		case needs:
			attention = append(attention, c)
		}
	}
	if detail == metricsDetailFull {
		slices.SortFunc(s.named, func(a, b companyState) int { return cmp.Compare(a.name, b.name) })
		return s
	}
	slices.SortFunc(attention, func(a, b companyState) int {
		return cmp.Or(a.lapse.Compare(b.lapse), cmp.Compare(a.name, b.name))
	})
	s.named = attention[:min(len(attention), maxNamedCompanies)]
	return s
}

func newCompanyState(name string, v companyView) companyState {
	c := companyState{name: name, status: viewStatus(v)}
	if v.entry == nil {
		return c // unreadable: lapsed already, nothing else known
	}
	t := v.entry.Token
	c.lastRenewal, c.failures = t.LastRefreshAt, t.Failures
	if t.AccessToken != "" {
		c.access = t.ExpiresAt
	}
	if t.RefreshToken != "" {
		c.refresh = t.RefreshExpiresAt
	}
	switch c.status {
	case statusNeedsBootstrap: // lapsed already: first (zero lapse)
	case statusDegraded:
		c.lapse = earliestKnown(c.access, c.refresh)
	default:
		c.lapse = c.refresh
	}
	return c
}

// add counts c (whose view is v) in the mount-wide series.
func (s *stateSummary) add(c companyState, v companyView, now time.Time) {
	s.byStatus[c.status]++
	if due := v.due(c.name, 0, now); !due.IsZero() && !due.After(now) {
		s.backlog++
	}
	if c.status == statusNeedsBootstrap || v.entry == nil {
		return // its tokens are dead or unreadable: only the status counts
	}
	if v.entry.Prewarm && !c.access.IsZero() {
		s.soonestAccess = earliestKnown(s.soonestAccess, c.access)
	}
	if c.refresh.IsZero() {
		return
	}
	s.soonestRefresh = earliestKnown(s.soonestRefresh, c.refresh)
	left := c.refresh.Sub(now).Seconds()
	s.refreshCount++
	s.refreshSum += left
	for _, le := range refreshLeftBuckets {
		if left <= le {
			s.refreshLeft[le]++
		}
	}
}

// earliestKnown is the earlier of a and b, a zero time meaning unknown.
func earliestKnown(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// viewStatus is a company's status as reads, LIST, events and metrics show it:
// tokens storage has not accepted yet make it degraded.
func viewStatus(v companyView) string {
	switch {
	case v.unreadable != "":
		return statusUnreadable
	case v.entry == nil:
		return statusNotConfigured
	case v.unsaved:
		return statusDegraded // tokens storage has not accepted yet
	case v.entry.Token.Status == "":
		return statusNeedsBootstrap
	}
	return v.entry.Token.Status
}

// stateCollector reports one scrape's stateSummary.
type stateCollector struct {
	descs *stateDescs
	state stateSummary
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs.all() {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	d, s := c.descs, &c.state
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	timestamp := func(desc *prometheus.Desc, t time.Time, labels ...string) {
		if !t.IsZero() {
			gauge(desc, float64(t.Unix()), labels...)
		}
	}
	for _, st := range allStatuses {
		gauge(d.companies, float64(s.byStatus[st]), st)
	}
	gauge(d.attention, float64(s.attention))
	gauge(d.backlog, float64(s.backlog))
	timestamp(d.accessExpiry, s.soonestAccess)
	timestamp(d.refreshExpiry, s.soonestRefresh)
	ch <- prometheus.MustNewConstHistogram(d.refreshLeft, s.refreshCount, s.refreshSum, s.refreshLeft)
	for _, co := range s.named {
		gauge(d.status, 1, co.name, co.status)
		timestamp(d.companyAccess, co.access, co.name)
		timestamp(d.companyRefresh, co.refresh, co.name)
		gauge(d.failures, float64(co.failures), co.name)
		timestamp(d.lastRenewal, co.lastRenewal, co.name)
	}
}
