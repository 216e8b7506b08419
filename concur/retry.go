package concur

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// request is one logical call, replayed unchanged on every attempt.
type request struct {
	op     string
	method string
	url    *url.URL
	header http.Header
	body   []byte // nil for GET/DELETE; a []byte so every attempt re-reads it
	// secrets are scrubbed out of any error text, in case a server echoes one.
	secrets []Secret
	// decodeError classifies a non-2xx answer.
	decodeError func(status int, h http.Header, body []byte) *Error
	// onSuccess decodes a 2xx answer; an error means the body was unusable
	// (malformed, empty), which is transient.
	onSuccess func(h http.Header, body []byte) error
}

// attempts is the state of one call across its attempts. go-retryablehttp
// runs the loop; checkRetry does the per-attempt work (read the bounded
// body, decode, classify, log) and decides, and backoff returns what
// checkRetry planned.
type attempts struct {
	c       *Client
	r       *request
	caller  context.Context // the caller's ctx, told apart from our elapsed budget
	n       int
	ok      bool
	lastErr *Error
	wait    time.Duration
}

// do runs r with retries and returns nil once onSuccess accepted a 2xx body.
func (c *Client) do(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return &Error{Op: r.op, Class: ClassTransient, Err: err}
	}
	if err := c.allowed.Check(r.url.String()); err != nil {
		// Every request is checked, not only base URLs: nothing leaves for a host off the list.
		return &Error{Op: r.op, Class: ClassPermanent, Err: err}
	}
	budget, cancel := context.WithTimeout(ctx, c.retry.MaxElapsed)
	defer cancel()

	req, err := retryablehttp.NewRequestWithContext(budget, r.method, r.url.String(), r.body)
	if err != nil {
		return &Error{Op: r.op, Class: ClassPermanent, Err: errors.New("cannot build request")}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.userAgent)

	a := &attempts{c: c, r: r, caller: ctx}
	rc := &retryablehttp.Client{
		HTTPClient:   c.http,
		Logger:       nil, // its own logging prints URLs and errors we have not vetted
		RetryMax:     c.retry.MaxAttempts - 1,
		RetryWaitMin: c.retry.MinBackoff,
		RetryWaitMax: c.retry.MaxBackoff,
		CheckRetry:   a.checkRetry,
		Backoff:      a.backoff,
		// Hand back whatever there is; a.lastErr says what happened, rather
		// than the generic "giving up after N attempts".
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	resp, doErr := rc.Do(req)
	if resp != nil {
		resp.Body.Close()
	}
	switch {
	case a.ok:
		return nil
	case ctx.Err() != nil:
		return &Error{Op: r.op, Class: ClassTransient, Err: ctx.Err()}
	case a.lastErr != nil:
		return a.lastErr
	case doErr != nil:
		return a.finish(&Error{Class: ClassTransient, Err: sanitizeTransportError(doErr)})
	}
	return a.finish(&Error{Class: ClassTransient, Err: errors.New("no usable response")})
}

// checkRetry is go-retryablehttp's CheckRetry: called once per attempt.
func (a *attempts) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	a.n++
	if a.caller.Err() != nil {
		return false, a.caller.Err()
	}
	if err != nil {
		e := a.finish(&Error{Class: ClassTransient, Err: sanitizeTransportError(err)})
		permanent := isPermanentTransportError(err)
		if permanent {
			e.Class = ClassPermanent
		}
		// An attempt cut short by our own elapsed budget says nothing about
		// Concur; the previous answer, if any, is the better report.
		if ctx.Err() == nil || a.lastErr == nil {
			a.lastErr = e
		}
		a.logAttempt(0, "", err)
		if permanent || ctx.Err() != nil {
			return false, nil
		}
		return a.planRetry(ctx, nil), nil
	}

	body, readErr := a.c.readBody(resp)
	cid := resp.Header.Get("concur-correlationid")
	a.logAttempt(resp.StatusCode, cid, readErr)
	if readErr != nil {
		a.lastErr = a.finish(&Error{StatusCode: resp.StatusCode, CorrelationID: cleanText(cid), Class: ClassTransient, Err: readErr})
		a.setRetryAfter(a.lastErr, resp)
		return a.planRetry(ctx, resp), nil
	}

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if derr := a.r.onSuccess(resp.Header, body); derr != nil {
			a.lastErr = a.finish(&Error{StatusCode: resp.StatusCode, CorrelationID: cleanText(cid), Class: ClassTransient, Err: derr})
			return a.planRetry(ctx, resp), nil
		}
		a.ok, a.lastErr = true, nil
		return false, nil
	}

	e := a.r.decodeError(resp.StatusCode, resp.Header, body)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.Class = ClassPermanent
		e.Err = errors.New("unexpected HTTP redirect; redirects are not followed")
	}
	a.lastErr = a.finish(e)
	a.setRetryAfter(e, resp)
	if e.Class != ClassTransient {
		return false, nil
	}
	return a.planRetry(ctx, resp), nil
}

// planRetry decides whether another attempt fits the attempt and time
// budgets and, if so, how long to wait first.
func (a *attempts) planRetry(ctx context.Context, resp *http.Response) bool {
	pol := a.c.retry
	if a.n >= pol.MaxAttempts || ctx.Err() != nil {
		return false
	}
	wait := a.c.jitteredBackoff(a.n)
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), a.c.now()); ok {
			wait = min(d, pol.MaxBackoff)
		}
	}
	// Waiting past the budget (or the caller's deadline) only to be cut off
	// would waste the time: stop now with the last answer.
	if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
		return false
	}
	a.wait = wait
	return true
}

// backoff is go-retryablehttp's Backoff: the wait planRetry chose.
func (a *attempts) backoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return a.wait
}

// finish stamps an error with the operation and removes any secret a
// server may have echoed back.
func (a *attempts) finish(e *Error) *Error {
	e.Op = a.r.op
	scrubSecrets(e, a.r.secrets)
	return e
}

func (a *attempts) setRetryAfter(e *Error, resp *http.Response) {
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), a.c.now()); ok {
		e.RetryAfter, e.HasRetryAfter = d, true
	}
}

// logAttempt writes one Debug line per attempt: never headers, bodies,
// queries or error text that could hold a credential.
func (a *attempts) logAttempt(status int, correlationID string, err error) {
	if !a.c.log.IsDebug() {
		return
	}
	args := []any{
		"op", a.r.op, "method", a.r.method, "host", a.r.url.Host, "path", a.r.url.Path,
		"attempt", a.n, "status", status,
	}
	if correlationID != "" {
		args = append(args, "correlation_id", cleanText(correlationID))
	}
	if err != nil {
		args = append(args, "error", sanitizeTransportError(err).Error())
	}
	a.c.log.Debug("concur request", args...)
}

// readBody reads at most MaxBodyBytes; a longer body is an error, never a
// silent truncation (a truncated token response would decode wrongly).
func (c *Client) readBody(resp *http.Response) ([]byte, error) {
	defer func() {
		resp.Body.Close()
		resp.Body = http.NoBody // go-retryablehttp drains it before a retry
	}()
	if resp.ContentLength > c.maxBody {
		return nil, fmt.Errorf("response body of %d bytes exceeds the limit of %d", resp.ContentLength, c.maxBody)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading response body: %w", sanitizeTransportError(err))
	}
	if int64(len(body)) > c.maxBody {
		return nil, fmt.Errorf("response body exceeds the limit of %d bytes", c.maxBody)
	}
	return body, nil
}

// jitteredBackoff is exponential from MinBackoff, capped by MaxBackoff, with
// the upper half jittered so that many clients do not retry in step.
func (c *Client) jitteredBackoff(failures int) time.Duration {
	lo, hi := c.retry.MinBackoff, c.retry.MaxBackoff
	d := lo
	for i := 1; i < failures && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	if half > 0 {
		d = half + rand.N(half+1)
	}
	return max(d, lo)
}

// parseRetryAfter reads delta-seconds ("0" means now) or an HTTP date
// (measured against now, the client's clock).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second) // callers cap it further
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// sanitizeTransportError keeps the error chain but drops the query string
// from a *url.Error's URL (filter values are not secrets, but need not be in logs).
func sanitizeTransportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u, perr := url.Parse(ue.URL)
		if perr != nil {
			return &url.Error{Op: ue.Op, URL: "(unparseable URL)", Err: ue.Err}
		}
		u.RawQuery, u.Fragment, u.User = "", "", nil
		return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
	}
	return err
}

// isPermanentTransportError: certificate and request-construction failures
// repeat identically on every attempt.
func isPermanentTransportError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "unsupported protocol scheme") ||
		strings.Contains(msg, "invalid header field")
}

// scrubSecrets replaces any credential a server echoed into an error.
func scrubSecrets(e *Error, secrets []Secret) {
	for _, s := range secrets {
		v := s.Reveal()
		if v == "" {
			continue
		}
		e.ErrorCode = strings.ReplaceAll(e.ErrorCode, v, redacted)
		e.Description = strings.ReplaceAll(e.Description, v, redacted)
		e.CorrelationID = strings.ReplaceAll(e.CorrelationID, v, redacted)
		e.Geolocation = strings.ReplaceAll(e.Geolocation, v, redacted)
		if e.Err != nil && strings.Contains(e.Err.Error(), v) {
			e.Err = errors.New(strings.ReplaceAll(e.Err.Error(), v, redacted))
		}
	}
}
