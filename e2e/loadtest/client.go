package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// client talks HTTP to Vault and to the simulator's admin endpoint.
type client struct {
	hc                       *http.Client
	vaultAddr, token, simURL string
}

// newClient keeps up to 2*conns connections alive, so every load worker has its own.
func newClient(o *options) *client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.conns * 2,
		MaxIdleConnsPerHost: o.conns * 2,
		MaxConnsPerHost:     o.conns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		vaultAddr: strings.TrimSuffix(o.vaultAddr, "/"), token: o.token, simURL: strings.TrimSuffix(o.simURL, "/")}
}

// vaultRequest is an authenticated GET of a Vault API path, for the load generator to clone.
func (c *client) vaultRequest(ctx context.Context, path string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.vaultAddr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Vault-Token", c.token)
	return req, nil
}

// get reads a Vault API path with the token.
func (c *client) get(ctx context.Context, path string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, c.vaultAddr+path, nil, true)
}

func (c *client) do(ctx context.Context, method, u string, body []byte, withToken bool) ([]byte, error) {
	//nolint:gosec // G704: -vault-addr and -sim-url (loopback only) are the tool's own targets
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if withToken {
		req.Header.Set("X-Vault-Token", c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req) //nolint:gosec // G704: -vault-addr and -sim-url (loopback only) are the tool's own targets
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, u, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// writeLookalike writes a KV v2 secret at kvPath shaped like the creds
// response, so both reads move similar bytes.
func (c *client) writeLookalike(ctx context.Context, kvPath string, credsBody []byte) error {
	data, err := lookalike(credsBody)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, c.vaultAddr+kvPath, body, true)
	return err
}

// lookalike is the data of a Vault response with the same keys and, in
// place of each string, random text of the same length.
func lookalike(credsBody []byte) (map[string]any, error) {
	var creds struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(credsBody, &creds); err != nil || len(creds.Data) == 0 {
		return nil, errors.New("the creds response has no data")
	}
	data := map[string]any{}
	for k, v := range creds.Data {
		if s, ok := v.(string); ok {
			data[k] = randomText(len(s))
		} else {
			data[k] = v
		}
	}
	return data, nil
}

func randomText(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// vaultVersion is the version Vault's seal status names, or "".
func (c *client) vaultVersion(ctx context.Context) string {
	b, err := c.do(ctx, http.MethodGet, c.vaultAddr+"/v1/sys/seal-status", nil, false)
	if err != nil {
		return ""
	}
	var s struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &s) != nil {
		return ""
	}
	return s.Version
}

// simStats is the simulator's /_sim/stats.
func (c *client) simStats(ctx context.Context) (map[string]any, error) {
	b, err := c.do(ctx, http.MethodGet, c.simURL+"/_sim/stats", nil, false)
	if err != nil {
		return nil, fmt.Errorf("simulator stats: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("simulator stats: %w", err)
	}
	return m, nil
}

// tokenCalls is the number of token-endpoint grants (refresh + password) in simulator stats.
func tokenCalls(stats map[string]any) int {
	g, _ := stats["grants"].(map[string]any)
	n := 0
	for _, k := range []string{"refresh_token", "password"} {
		if f, ok := g[k].(float64); ok {
			n += int(f)
		}
	}
	return n
}
