package concur

import (
	"fmt"
)

const redacted = "[REDACTED]"

// Secret holds a credential (client secret, request token, refresh token,
// access token). Every way of printing or marshalling it yields [REDACTED];
// only Reveal gives the value, and it is called where the value goes on the
// wire or into storage.
type Secret struct {
	value string
}

// NewSecret wraps a credential.
func NewSecret(v string) Secret { return Secret{value: v} }

// Reveal returns the credential itself.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether no credential is held.
func (s Secret) IsZero() bool { return s.value == "" }

// Equal reports whether two secrets hold the same credential.
func (s Secret) Equal(o Secret) bool { return s.value == o.value }

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// Format makes every verb (%v, %+v, %#v, %s, %q, %x, ...) print [REDACTED].
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = f.Write([]byte(`"` + redacted + `"`))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// MarshalJSON keeps secrets out of JSON logs and responses.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText keeps secrets out of text encoders (hclog's plain format among them).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
