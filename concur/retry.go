package concur

import (
	"bytes"
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
	// onSuccess decodes a 2xx answer. An error means the body was unusable
	// (malformed, empty): transient, unless grant is set.
	onSuccess func(h http.Header, body []byte) error
	// grant marks a token grant: once Concur answered 2xx the grant happened
	// (a request token consumed, a refresh token rotated), so it is never
	// sent again, and an unusable 2xx body is ClassGrantOutcomeUnknown.
	grant bool
}

// outcome is what one attempt came to: done, or an error and whether
// another attempt may help.
type outcome struct {
	err   *Error // nil: the call succeeded
	retry bool
}

// do runs r, retrying transient failures within the attempt and time
// budgets, and returns nil once onSuccess accepted a 2xx body. It is the
// loop go-retryablehttp's Do runs, written out: send, read the bounded
// body, classify, decide, wait.
func (c *Client) do(ctx context.Context, r *request) error {
	budget, cancel := context.WithTimeout(ctx, c.retry.MaxElapsed)
	defer cancel()
	var last *Error
	for n := 1; ; n++ {
		if err := c.maySend(ctx, r); err != nil {
			return err
		}
		o := c.attempt(budget, r, n)
		if o.err == nil {
			return nil
		}
		// The caller gave up. An answer that did arrive (a 2xx whose body was
		// cut off above all: the grant happened) is still the better report.
		if err := ctx.Err(); err != nil && o.err.StatusCode == 0 {
			return &Error{Op: r.op, Class: ClassTransient, Err: err}
		}
		// An attempt cut short by our own budget says nothing about Concur;
		// the previous answer, if any, is the better report.
		if last == nil || budget.Err() == nil || o.err.StatusCode != 0 {
			last = o.err
		}
		if !o.retry || n >= c.retry.MaxAttempts || budget.Err() != nil {
			return last
		}
		again, err := c.pause(ctx, budget, r, n, o.err)
		if err != nil {
			return err
		}
		if !again {
			return last
		}
	}
}

// maySend is what must hold before every send: the caller still waits, and
// the host is on the allow-list. Every request is checked, not only base
// URLs: nothing leaves for a host off the list.
func (c *Client) maySend(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return &Error{Op: r.op, Class: ClassTransient, Err: err}
	}
	if err := c.allowed.Check(r.url.String()); err != nil {
		return &Error{Op: r.op, Class: ClassPermanent, Err: err}
	}
	return nil
}

// pause waits before attempt n+1 and reports whether to make it. It does not
// when the wait does not fit the budget or was cut short; a caller that gave
// up then gets its own error.
func (c *Client) pause(ctx, budget context.Context, r *request, n int, e *Error) (bool, error) {
	wait, ok := c.nextWait(budget, n, e)
	if !ok {
		return false, nil
	}
	if err := c.wait(budget, wait); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return false, &Error{Op: r.op, Class: ClassTransient, Err: cerr}
		}
		return false, nil
	}
	return true, nil
}

// nextWait is the pause before attempt n+1: what Retry-After asked for (at
// least MinBackoff, so "0" cannot make a busy loop), else the jittered
// backoff. A wait that does not fit what is left of the budget ends the
// call now; the error's RetryAfter then tells the caller when to come back.
func (c *Client) nextWait(budget context.Context, n int, e *Error) (time.Duration, bool) {
	wait := c.jitteredBackoff(n)
	if e.HasRetryAfter {
		wait = max(e.RetryAfter, c.retry.MinBackoff)
	}
	if dl, ok := budget.Deadline(); ok && wait > time.Until(dl) {
		return 0, false
	}
	return wait, true
}

// attempt sends r once and classifies the answer.
func (c *Client) attempt(ctx context.Context, r *request, n int) outcome {
	req, err := http.NewRequestWithContext(ctx, r.method, r.url.String(), bytes.NewReader(r.body))
	if err != nil {
		return outcome{err: c.finish(r, &Error{Class: ClassPermanent, Err: errors.New("cannot build request")})}
	}
	if r.body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.userAgent)

	resp, err := c.http.Do(req)
	if err != nil {
		c.logAttempt(r, n, 0, "", err)
		e := &Error{Class: ClassTransient, Err: sanitizeTransportError(err)}
		if isPermanentTransportError(err) {
			e.Class = ClassPermanent
		}
		return outcome{err: c.finish(r, e), retry: e.Class == ClassTransient}
	}
	c.noteDeprecation(r, resp.Header)
	body, readErr := c.readBody(resp)
	cid := resp.Header.Get("concur-correlationid")
	c.logAttempt(r, n, resp.StatusCode, cid, readErr)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return c.success(r, resp, body, readErr)
	}
	if readErr != nil {
		e := &Error{StatusCode: resp.StatusCode, CorrelationID: sanitizeText(cid), Class: ClassTransient, Err: readErr}
		c.setRetryAfter(e, resp)
		return outcome{err: c.finish(r, e), retry: true}
	}
	e := r.decodeError(resp.StatusCode, resp.Header, body)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.Class = ClassPermanent
		e.Err = errors.New("unexpected HTTP redirect; redirects are not followed")
	}
	c.setRetryAfter(e, resp)
	return outcome{err: c.finish(r, e), retry: e.Class == ClassTransient}
}

// success handles a 2xx answer. A grant's 2xx is final whatever its body:
// sending the grant again would present a request token or refresh token
// that Concur may already have consumed.
func (c *Client) success(r *request, resp *http.Response, body []byte, readErr error) outcome {
	err := readErr
	if err == nil {
		err = r.onSuccess(resp.Header, body)
	}
	if err == nil {
		return outcome{}
	}
	e := &Error{StatusCode: resp.StatusCode, CorrelationID: sanitizeText(resp.Header.Get("concur-correlationid")),
		Class: ClassTransient, Err: err}
	if r.grant {
		e.Class = ClassGrantOutcomeUnknown
		e.Err = fmt.Errorf("grant outcome unknown (Concur processed the grant, its answer is unusable): %w", err)
		return outcome{err: c.finish(r, e)}
	}
	return outcome{err: c.finish(r, e), retry: true}
}

// wait sleeps d or until ctx is done, with the injected Options.Wait if any.
func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if c.sleep != nil {
		return c.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish stamps an error with the operation, removes any secret a server
// may have echoed back and bounds the server's text.
func (c *Client) finish(r *request, e *Error) *Error {
	e.Op = r.op
	scrubAndBound(e, r.secrets)
	return e
}

func (c *Client) setRetryAfter(e *Error, resp *http.Response) {
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
		e.RetryAfter, e.HasRetryAfter = d, true
	}
}

// logAttempt writes one Debug line per attempt: never headers, bodies,
// queries or error text that could hold a credential.
func (c *Client) logAttempt(r *request, n, status int, correlationID string, err error) {
	if !c.log.IsDebug() {
		return
	}
	args := []any{
		"op", r.op, "method", r.method, "host", r.url.Host, "path", r.url.Path,
		"attempt", n, "status", status,
	}
	if correlationID != "" {
		args = append(args, "correlation_id", cleanText(correlationID))
	}
	if err != nil {
		e := &Error{Err: sanitizeTransportError(err)}
		scrubSecrets(e, r.secrets)
		args = append(args, "error", e.Err.Error())
	}
	c.log.Debug("concur request", args...)
}

// readBody reads at most MaxBodyBytes; a longer body is an error, never a
// silent truncation (a truncated token response would decode wrongly).
func (c *Client) readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
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
		d = half + rand.N(half+1) //nolint:gosec // G404: jitter spreads retries; it guards no secret
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
		// A day is far beyond any budget; the bound keeps Duration from overflowing.
		n = min(n, int64(24*time.Hour/time.Second))
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), 24*time.Hour), true
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

// scrubAndBound replaces any credential a server echoed into an error, and
// only then cuts the server's text to maxTextLen: cut first, and a
// credential across the cut would keep its first part.
func scrubAndBound(e *Error, secrets []Secret) {
	scrubSecrets(e, secrets)
	e.ErrorCode, e.Description = boundText(e.ErrorCode), boundText(e.Description)
	e.CorrelationID, e.Geolocation = boundText(e.CorrelationID), boundText(e.Geolocation)
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
