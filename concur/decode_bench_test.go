package concur

import "testing"

// Decoding a token-endpoint response of the live shape (docs/performance.md).
func BenchmarkDecodeTokenResponse(b *testing.B) {
	body := []byte(`{"expires_in":3600,"scope":"openid user.read identity.user.core.read identity.user.enterprise.read","token_type":"Bearer",` +
		`"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6IjE0NTU2MTQzNDYifQ.eyJjb25jdXIuc2NvcGVzIjpbIm9wZW5pZCJdLCJhdWQiOiIqIiwic3ViIjoiYWEwNzZhZGEtODBhOS00ZjU3LThlOTgtOTMwMGIxYzMxNzFkIiwiaXNzIjoiaHR0cHM6Ly91cy5hcGkuY29uY3Vyc29sdXRpb25zLmNvbSJ9.c2lnbmF0dXJlLXBsYWNlaG9sZGVyLWZvci1iZW5jaG1hcmtpbmctb25seQ",` +
		`"refresh_token":"2a1b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d","refresh_expires_in":1703696549,"geolocation":"https://us2.api.concursolutions.com",` +
		`"id_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2ln"}`)
	presented := NewSecret("presented-refresh")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		tok, err := decodeTokenResponse(body, testNow, presented)
		if err != nil || tok.AccessToken.IsZero() {
			b.Fatal(err)
		}
	}
}

// The reference shape: numbers as strings, no geolocation.
func BenchmarkDecodeTokenResponseStrings(b *testing.B) {
	body := []byte(`{"expires_in":"3600","access_token":"AT-0123456789abcdef0123456789abcdef","refresh_token":"RT2","refresh_expires_in":"1703696549"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := decodeTokenResponse(body, testNow, Secret{}); err != nil {
			b.Fatal(err)
		}
	}
}
