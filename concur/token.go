package concur

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

const tokenPath = "/oauth2/v0/token" //nolint:gosec // G101: an endpoint path, not a credential

// Operation names used in *Error.Op.
const (
	opPasswordGrant = "password grant"
	opRefreshGrant  = "refresh grant"
	opRevoke        = "revoke connection"
	opGetUser       = "get user"
	opFindUsers     = "find users"
)

// ExchangeRequestToken gets a company token from a company request token
// (password grant, credtype=authtoken). A code-16 answer is followed once.
func (c *Client) ExchangeRequestToken(
	ctx context.Context, baseURL string, creds Credentials, companyUUID string, requestToken Secret,
) (*Token, error) {
	op := opPasswordGrant
	if err := checkCredentials(op, creds); err != nil {
		return nil, err
	}
	if companyUUID == "" || requestToken.IsZero() {
		return nil, &Error{Op: op, Class: ClassPermanent, Err: errors.New("company UUID and request token are required")}
	}
	form := url.Values{
		"client_id":     {creds.ClientID},
		"client_secret": {creds.ClientSecret.Reveal()},
		"grant_type":    {"password"},
		"username":      {companyUUID},
		"password":      {requestToken.Reveal()},
		"credtype":      {"authtoken"},
	}
	return c.grant(ctx, op, baseURL, form, Secret{}, []Secret{creds.ClientSecret, requestToken})
}

// Refresh runs the refresh grant. Token.RefreshToken is the value Concur
// returned, or refreshToken when the response carries none. A code-16
// answer is followed once.
func (c *Client) Refresh(ctx context.Context, baseURL string, creds Credentials, refreshToken Secret) (*Token, error) {
	op := opRefreshGrant
	if err := checkCredentials(op, creds); err != nil {
		return nil, err
	}
	if refreshToken.IsZero() {
		return nil, &Error{Op: op, Class: ClassPermanent, Err: errors.New("no refresh token")}
	}
	form := url.Values{
		"client_id":     {creds.ClientID},
		"client_secret": {creds.ClientSecret.Reveal()},
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken.Reveal()},
	}
	return c.grant(ctx, op, baseURL, form, refreshToken, []Secret{creds.ClientSecret, refreshToken})
}

func checkCredentials(op string, creds Credentials) error {
	if creds.ClientID == "" || creds.ClientSecret.IsZero() {
		return &Error{Op: op, Class: ClassPermanent, Err: errors.New("client id and client secret are required")}
	}
	return nil
}

// grant posts form to baseURL and, on code 16, once more to the data centre
// Concur named, provided the allow-list admits it.
func (c *Client) grant(ctx context.Context, op, baseURL string, form url.Values, presented Secret, secrets []Secret) (*Token, error) {
	base, err := c.checkBase(op, baseURL)
	if err != nil {
		return nil, err
	}
	body := []byte(form.Encode())
	tok, err := c.postToken(ctx, op, base, body, presented, secrets)
	var ce *Error
	if !errors.As(err, &ce) || ce.Class != ClassRedirect {
		return tok, err
	}

	next, nerr := NormalizeBaseURL(ce.Geolocation)
	if nerr != nil {
		return nil, redirectFailed(op, ce, ce.Geolocation, errors.New("code 16 (wrong data centre) without a usable geolocation"))
	}
	if aerr := c.allowed.Check(next); aerr != nil {
		return nil, redirectFailed(op, ce, next, fmt.Errorf("code 16 redirect to %s refused: %w", next, aerr))
	}
	if next == base {
		return nil, redirectFailed(op, ce, ce.Geolocation, redirectLoop(next))
	}
	c.log.Debug("concur token endpoint redirected (code 16)", "op", op, "from", base, "to", next)
	tok, err = c.postToken(ctx, op, next, body, presented, secrets)
	if errors.As(err, &ce) && ce.Class == ClassRedirect {
		return nil, redirectFailed(op, ce, ce.Geolocation, redirectLoop(ce.Geolocation))
	}
	return tok, err
}

// redirectFailed is the permanent error for a code-16 answer that cannot be
// followed: what Concur said, plus why the engine did not follow it.
func redirectFailed(op string, ce *Error, geolocation string, why error) *Error {
	return &Error{Op: op, StatusCode: ce.StatusCode, ErrorCode: ce.ErrorCode, Description: ce.Description,
		Code: ce.Code, CorrelationID: ce.CorrelationID, Geolocation: geolocation, Class: ClassPermanent, Err: why}
}

func redirectLoop(to string) error {
	return fmt.Errorf("code 16 redirect loop (sent on to %q again)", to)
}

func (c *Client) postToken(ctx context.Context, op, base string, body []byte, presented Secret, secrets []Secret) (*Token, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, &Error{Op: op, Class: ClassPermanent, Err: errors.New("bad base URL")}
	}
	u.Path = tokenPath
	var tok *Token
	r := &request{
		op:     op,
		method: http.MethodPost,
		url:    u,
		header: http.Header{
			// Exactly this: Concur rejects a charset parameter.
			"Content-Type": {"application/x-www-form-urlencoded"},
			"Accept":       {"application/json"},
		},
		body:        body,
		secrets:     secrets,
		grant:       true,
		decodeError: decodeOAuthError,
		onSuccess: func(h http.Header, b []byte) error {
			t, err := decodeTokenResponse(b, c.now(), presented)
			if err != nil {
				return err
			}
			t.CorrelationID = cleanText(h.Get("concur-correlationid"))
			tok = t
			return nil
		},
	}
	if err := c.do(ctx, r); err != nil {
		return nil, err
	}
	return tok, nil
}
