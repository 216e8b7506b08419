package backend

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// Messages of errors the engine returns itself. Errors go to clients and to
// the audit log in clear, so none of them may carry a secret.
const (
	msgNotConfigured = "the Concur engine is not configured: write concur/config with client_id, client_secret, " +
		"company_uuid and a request_token or refresh_token"
	msgNeedsBootstrap = "the Concur engine needs a new company token: write concur/config with a new request_token or refresh_token"
	msgUnsaved        = "Concur issued new tokens but Vault could not store them; the write is retried before anything else"
	msgUnreadable     = "the company's stored entry cannot be decoded (delete the company, or write it again with a new " +
		"request_token or refresh_token)"
)

// errNotConfigured: nothing to serve until an operator writes config.
func errNotConfigured() error { return logical.CodedError(http.StatusBadRequest, msgNotConfigured) }

// errNoCompany: a named company that does not exist on the mount.
func errNoCompany(name string) error {
	return logical.CodedError(
		http.StatusNotFound,
		fmt.Sprintf("no company named %q on this mount: write concur/companies/%s first", name, name),
	)
}

// errUnreadable: the company's stored entry cannot be decoded.
func errUnreadable(problem string) error {
	return logical.CodedError(http.StatusInternalServerError, msgUnreadable+": "+problem)
}

// errNeedsBootstrap: Concur refused the refresh token for good (revoked,
// expired, credentials changed). Serving stops until config is written again.
func errNeedsBootstrap(lastError string) error {
	if lastError == "" {
		return logical.CodedError(http.StatusServiceUnavailable, msgNeedsBootstrap)
	}
	return logical.CodedError(http.StatusServiceUnavailable, msgNeedsBootstrap+"; last error: "+lastError)
}

// isReadOnly reports whether err is Vault's "cannot write to readonly
// storage". Across the plugin's gRPC boundary it arrives as plain text, so it
// is matched by text.
func isReadOnly(err error) bool {
	return err != nil && (errors.Is(err, logical.ErrReadOnly) || strings.Contains(err.Error(), logical.ErrReadOnly.Error()))
}

// upstreamError turns a failed Concur call into the error a Vault client
// sees: a top-level CodedError (wrapping would lose the status code) whose
// text names Concur's status, error code and correlation id.
func upstreamError(err error) error {
	if isReadOnly(err) {
		// Let Vault forward the request to the node that may write.
		return logical.ErrReadOnly
	}
	if coded := logical.HTTPCodedError(nil); errors.As(err, &coded) {
		return coded
	}
	var ce *concur.Error
	if !errors.As(err, &ce) {
		return logical.CodedError(http.StatusInternalServerError, err.Error())
	}
	switch ce.Class {
	case concur.ClassInvalidRequest:
		switch ce.StatusCode {
		case http.StatusNotFound:
			return logical.CodedError(http.StatusNotFound, ce.Error())
		default:
			return logical.CodedError(http.StatusBadRequest, ce.Error())
		}
	case concur.ClassTransient:
		if ce.StatusCode == http.StatusTooManyRequests {
			return logical.CodedError(http.StatusTooManyRequests, ce.Error())
		}
		if ce.StatusCode == 0 && isTimeout(ce.Err) {
			return logical.CodedError(http.StatusGatewayTimeout, ce.Error())
		}
		return logical.CodedError(http.StatusBadGateway, ce.Error())
	default:
		return logical.CodedError(http.StatusBadGateway, ce.Error())
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// fieldError is a 400 naming the offending field.
func fieldError(field, format string, args ...any) *logical.Response {
	return logical.ErrorResponse("%s: %s", field, fmt.Sprintf(format, args...))
}
