// Package concur is a small SAP Concur API client: the OAuth2 token endpoint
// (company password grant and refresh grant), connection revocation and the
// Identity v4 user reads. It imports nothing from Vault.
//
// Every call checks the target host against an allow-list before sending a
// credential, never follows HTTP redirects, bounds each attempt with a
// timeout and each response body with a size limit, retries transient
// failures with backoff (never a token grant that Concur answered 2xx), and
// returns *Error values that never contain a credential.
package concur

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-hclog"
)

// Defaults for zero Options fields.
const (
	DefaultUserAgent    = "vault-plugin-secrets-concur"
	DefaultTimeout      = 30 * time.Second
	DefaultMaxBodyBytes = 2 << 20
	DefaultMaxAttempts  = 4
	DefaultMinBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultMaxElapsed   = 2 * time.Minute
)

// RetryPolicy bounds the retries of transient failures.
type RetryPolicy struct {
	MaxAttempts int           // total attempts including the first; 0 -> 4; 1 disables retries
	MinBackoff  time.Duration // 0 -> 500ms
	MaxBackoff  time.Duration // 0 -> 30s; caps the exponential backoff (not a Retry-After that fits the budget)
	MaxElapsed  time.Duration // 0 -> 2m; total budget across attempts (never beyond ctx deadline)
}

// A Retry-After is honoured when it fits what is left of MaxElapsed (and at
// least MinBackoff is waited, also for "Retry-After: 0"); a longer one ends
// the call at once, and Error.RetryAfter says when Concur wants to hear again.

// Options configure a Client. The zero value is usable.
type Options struct {
	HTTPClient   *http.Client     // nil -> go-cleanhttp pooled client; redirects (3xx) are never followed
	AllowedHosts []string         // nil/empty -> []string{DefaultAllowedHost}
	Now          func() time.Time // nil -> time.Now
	UserAgent    string           // "" -> "vault-plugin-secrets-concur"
	Timeout      time.Duration    // per attempt; 0 -> 30s
	MaxBodyBytes int64            // 0 -> 2 MiB
	Retry        RetryPolicy
	Logger       hclog.Logger // nil -> hclog.NewNullLogger(); never logs secrets
	// Wait pauses between attempts; it returns early with ctx's error when
	// ctx is done. nil -> a timer. Tests pass one that does not sleep.
	Wait func(ctx context.Context, d time.Duration) error
	// OnDeprecation, when set, is called (synchronously, so keep it quick)
	// once for every response that carries Concur's x-api-warn or sunset header.
	OnDeprecation func(DeprecationNotice)
}

// Client talks to Concur. It is safe for concurrent use.
type Client struct {
	http      *http.Client
	allowed   *HostAllowList
	now       func() time.Time
	userAgent string
	maxBody   int64
	retry     RetryPolicy
	log       hclog.Logger
	sleep     func(ctx context.Context, d time.Duration) error
	// onDeprecation is Options.OnDeprecation.
	onDeprecation func(DeprecationNotice)
}

// New builds a Client; it fails when an AllowedHosts pattern is invalid or a
// limit is negative.
func New(opts Options) (*Client, error) {
	patterns := opts.AllowedHosts
	if len(patterns) == 0 {
		patterns = []string{DefaultAllowedHost}
	}
	allowed, err := ParseAllowedHosts(patterns)
	if err != nil {
		return nil, err
	}
	if opts.Timeout < 0 || opts.MaxBodyBytes < 0 || opts.Retry.MaxAttempts < 0 ||
		opts.Retry.MinBackoff < 0 || opts.Retry.MaxBackoff < 0 || opts.Retry.MaxElapsed < 0 {
		return nil, errors.New("concur: negative timeout, body limit or retry setting")
	}

	c := &Client{
		allowed:   allowed,
		now:       opts.Now,
		userAgent: opts.UserAgent,
		maxBody:   opts.MaxBodyBytes,
		retry:     opts.Retry,
		log:       opts.Logger,
		sleep:     opts.Wait,

		onDeprecation: opts.OnDeprecation,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxBodyBytes
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	r := &c.retry
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.MinBackoff == 0 {
		r.MinBackoff = DefaultMinBackoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	if r.MaxBackoff < r.MinBackoff {
		return nil, fmt.Errorf("concur: MaxBackoff %s is below MinBackoff %s", r.MaxBackoff, r.MinBackoff)
	}
	if r.MaxElapsed == 0 {
		r.MaxElapsed = DefaultMaxElapsed
	}

	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	// A shallow copy, so the caller's client keeps its own redirect policy;
	// the transport (and its connection pool) is shared.
	var hc http.Client
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
	} else {
		hc = *cleanhttp.DefaultPooledClient()
	}
	// A redirect would carry the Authorization header or replay the form
	// (client secret) to wherever Location points: hand the 3xx back instead.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// http.Client.Timeout covers one attempt including reading the body.
	if hc.Timeout == 0 || hc.Timeout > timeout {
		hc.Timeout = timeout
	}
	c.http = &hc
	return c, nil
}

// AllowedHosts returns the allow-list the client enforces.
func (c *Client) AllowedHosts() *HostAllowList { return c.allowed }

// checkBase normalises a base URL and checks it against the allow-list. A
// failure is permanent: it is configuration, and retrying cannot fix it.
func (c *Client) checkBase(op, baseURL string) (string, error) {
	base, err := NormalizeBaseURL(baseURL)
	if err != nil {
		return "", &Error{Op: op, Class: ClassPermanent, Err: err}
	}
	if err := c.allowed.Check(base); err != nil {
		return "", &Error{Op: op, Class: ClassPermanent, Err: err}
	}
	return base, nil
}
