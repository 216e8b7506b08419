package concurtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"sync"
)

// jwtSigner signs access and id tokens with RS256, like Concur; the public
// half of its key is served as a JWKS.
type jwtSigner struct {
	once sync.Once
	key  *rsa.PrivateKey
	kid  string
}

// processSigningKey is made on first use (a simulator that never grants pays
// nothing) and then shared by every Server of the process, read-only: a
// 2048-bit key takes 100-500 ms to make on a busy machine (more under -race),
// which each simulator used to pay inside its first grant, beyond the 200 ms
// client timeouts of the concur package's fault tests. It is a 1024-bit key
// (the least crypto/rsa accepts by default): nothing trusts a simulator's
// signature, and 2048-bit signing was most of the CPU of partner-scale tests.
var processSigningKey = sync.OnceValue(func() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // G403: a simulator's key (see above)
	if err != nil {
		panic("concurtest: generating the token signing key: " + err.Error())
	}
	return key
})

func (j *jwtSigner) init() {
	j.once.Do(func() {
		key := processSigningKey()
		sum := sha256.Sum256(key.N.Bytes())
		j.key, j.kid = key, "concur-sim-"+hex.EncodeToString(sum[:8])
	})
}

// signJWT returns a compact RS256 JWT of claims with a random "jti".
// PKCS#1 v1.5 signatures are deterministic: without the jti, two grants in
// the same second would hand out the same access token.
func (s *Server) signJWT(claims map[string]any) string {
	j := &s.jwt
	j.init()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	claims["jti"] = hex.EncodeToString(jti[:])
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": j.kid, "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	signed := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(nil, j.key, crypto.SHA256, digest[:])
	if err != nil {
		panic("concurtest: signing a token: " + err.Error())
	}
	return signed + "." + b64(sig)
}

// JWKS returns the JSON Web Key Set that verifies the simulator's tokens
// (the body of GET /oauth2/v0/jwks).
func (s *Server) JWKS() map[string]any {
	j := &s.jwt
	j.init()
	return map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": j.kid,
		"n": b64(j.key.N.Bytes()),
		"e": b64(big.NewInt(int64(j.key.E)).Bytes()),
	}}}
}

// handleJWKS is GET /oauth2/v0/jwks (reference 2.5).
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeGatewayError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed", r.URL.Path, s.Clock.Now())
		return
	}
	writeJSON(w, http.StatusOK, s.JWKS())
}
