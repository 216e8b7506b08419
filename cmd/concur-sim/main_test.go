package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a stderr that the test can read while run writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type sim struct {
	url    string
	stderr *lockedBuffer
	stop   chan os.Signal
	done   chan int
	stdout *bytes.Buffer // everything after the first line
}

// start runs the program in-process and waits for its one stdout line.
func start(t *testing.T, args ...string) *sim {
	t.Helper()
	pr, pw := io.Pipe()
	s := &sim{stderr: &lockedBuffer{}, stop: make(chan os.Signal, 1), done: make(chan int, 1), stdout: &bytes.Buffer{}}
	go func() {
		code := run(append([]string{"--listen", "127.0.0.1:0"}, args...), pw, s.stderr, s.stop)
		_ = pw.Close()
		s.done <- code
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		first := true
		for sc.Scan() {
			if first {
				lines <- sc.Text()
				first = false
				continue
			}
			s.stdout.WriteString(sc.Text() + "\n")
		}
		if first {
			close(lines)
		}
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("no stdout line; stderr:\n%s", s.stderr.String())
		}
		m := regexp.MustCompile(`^concur-sim listening on (https?://127\.0\.0\.1:\d+)$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("stdout line %q", line)
		}
		s.url = m[1]
	case <-time.After(10 * time.Second):
		t.Fatalf("simulator did not start; stderr:\n%s", s.stderr.String())
	}
	t.Cleanup(func() {
		select {
		case s.stop <- syscall.SIGTERM:
		default:
		}
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
		}
	})
	return s
}

func (s *sim) shutdown(t *testing.T) {
	t.Helper()
	s.stop <- syscall.SIGTERM
	select {
	case code := <-s.done:
		if code != 0 {
			t.Fatalf("exit code %d; stderr:\n%s", code, s.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	s.done <- 0 // for the cleanup
}

// get is c.Get with a request context.
func get(c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

func postJSON(t *testing.T, c *http.Client, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	payload, ctype := strings.NewReader("{}"), "application/json"
	if form != nil {
		payload, ctype = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, u, payload)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestRunDefaults(t *testing.T) {
	s := start(t)
	m := regexp.MustCompile(`generated request token: (at-[a-z0-9]+)`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("no generated request token on stderr:\n%s", s.stderr.String())
	}
	c := &http.Client{}
	form := url.Values{"client_id": {defaultClientID}, "client_secret": {defaultClientSecret}, "grant_type": {"password"},
		"credtype": {"authtoken"}, "username": {defaultCompanyUUID}, "password": {m[1]}}
	status, body := postJSON(t, c, s.url+"/oauth2/v0/token", form)
	if status != 200 || body["geolocation"] != s.url {
		t.Fatalf("password grant: %d %v", status, body)
	}
	refreshTok := body["refresh_token"].(string)

	// Admin endpoints.
	_, rt := postJSON(t, c, s.url+"/_sim/request-token", nil)
	if !strings.HasPrefix(rt["request_token"].(string), "at-") {
		t.Errorf("request-token: %v", rt)
	}
	status, _ = postJSON(t, c, s.url+"/_sim/fault", nil)
	if status != 400 {
		t.Errorf("empty fault accepted: %d", status)
	}
	resp, err := get(c, s.url+"/_sim/users")
	if err != nil {
		t.Fatal(err)
	}
	var users []map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&users)
	resp.Body.Close()
	if len(users) != 25 || !strings.HasSuffix(users[0]["userName"], "@aa076ada.example") {
		t.Errorf("users: %v", users)
	}
	resp, err = get(c, s.url+"/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats struct{ Grants map[string]int }
	_ = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if stats.Grants["password"] != 1 {
		t.Errorf("stats: %+v", stats)
	}

	s.shutdown(t)
	if s.stdout.Len() != 0 {
		t.Errorf("extra stdout: %q", s.stdout.String())
	}
	log := s.stderr.String()
	if !strings.Contains(log, "POST /oauth2/v0/token status=200 grant_type=password") {
		t.Errorf("request not logged:\n%s", log)
	}
	for _, secret := range []string{defaultClientSecret, refreshTok, body["access_token"].(string)} {
		if strings.Contains(log, secret) {
			t.Errorf("stderr shows a secret")
		}
	}
	if resp, err := get(c, s.url+"/_sim/stats"); err == nil {
		resp.Body.Close()
		t.Error("still serving after shutdown")
	}
}

func TestRunSeededTokensAndDataCenters(t *testing.T) {
	s := start(t, "--client-id", "cid", "--client-secret", "csecret", "--company-uuid", "3df11695-e8bb-40ff-8e98-c85913ab2789",
		"--request-token", "at-given", "--refresh-token", "rt-given", "--rotation", "rotate",
		"--data-centers", "glz,us2", "--company-data-center", "us2", "--users", "0", "--expires-as-strings")
	if strings.Contains(s.stderr.String(), "generated request token") {
		t.Error("a given request token must not be replaced or printed")
	}
	m := regexp.MustCompile(`data centre us2 at (http://\S+)`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("us2 URL not logged:\n%s", s.stderr.String())
	}
	us2 := m[1]
	c := &http.Client{}
	refresh := url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "grant_type": {"refresh_token"}, "refresh_token": {"rt-given"}}
	status, body := postJSON(t, c, s.url+"/oauth2/v0/token", refresh)
	if status != 400 || body["code"] != float64(16) || body["geolocation"] != us2 {
		t.Fatalf("GLZ should redirect: %d %v", status, body)
	}
	status, body = postJSON(t, c, us2+"/oauth2/v0/token", refresh)
	if status != 200 || body["refresh_token"] == "rt-given" || body["expires_in"] != "3600" {
		t.Fatalf("refresh at us2: %d %v", status, body)
	}
	pw := url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "grant_type": {"password"}, "credtype": {"authtoken"},
		"username": {"3df11695-e8bb-40ff-8e98-c85913ab2789"}, "password": {"at-given"}}
	if status, body := postJSON(t, c, us2+"/oauth2/v0/token", pw); status != 200 {
		t.Fatalf("given request token: %d %v", status, body)
	}
	// The landing zone answers the company grant itself, naming us2.
	if status, body := postJSON(t, c, s.url+"/oauth2/v0/token", pw); status != 200 || body["geolocation"] != us2 {
		t.Fatalf("password grant at GLZ: %d %v, want 200 naming %s", status, body, us2)
	}
	if !strings.Contains(s.stderr.String(), "lives in us2") {
		t.Errorf("the company's data centre is not logged:\n%s", s.stderr.String())
	}
	s.shutdown(t)
}

func getJSON(t *testing.T, c *http.Client, u string, v any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode
}

// --companies creates companies spread over the data centres; POST
// /_sim/companies adds one whose request token works at its data centre.
func TestRunCompanies(t *testing.T) {
	s := start(t, "--data-centers", "glz,us2,eu2", "--companies", "3")
	c := &http.Client{}
	var list []struct {
		CompanyUUID string `json:"company_uuid"`
		DataCenter  string `json:"data_center"`
	}
	if getJSON(t, c, s.url+"/_sim/companies", &list); len(list) != 4 || list[0].CompanyUUID != defaultCompanyUUID {
		t.Fatalf("companies: %+v", list)
	}
	var dcs []string
	for _, co := range list[1:] {
		dcs = append(dcs, co.DataCenter)
	}
	if strings.Join(dcs, ",") != "us2,eu2,us2" {
		t.Errorf("--companies 3 over glz,us2,eu2 live in %v", dcs)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.url+"/_sim/companies",
		strings.NewReader(`{"data_center":"eu2"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != 200 || created["data_center"] != "eu2" {
		t.Fatalf("POST /_sim/companies: %d %v", resp.StatusCode, created)
	}
	form := url.Values{"client_id": {defaultClientID}, "client_secret": {defaultClientSecret}, "grant_type": {"password"},
		"credtype": {"authtoken"}, "username": {created["company_uuid"]}, "password": {created["request_token"]}}
	status, body := postJSON(t, c, s.url+"/oauth2/v0/token", form)
	if status != 200 || !strings.HasPrefix(body["geolocation"].(string), "http://127.0.0.1:") || body["geolocation"] == s.url {
		t.Fatalf("exchange at the landing zone: %d %v", status, body)
	}
	var st struct{ Grants map[string]int }
	if getJSON(t, c, s.url+"/_sim/stats?company_uuid="+created["company_uuid"], &st); st.Grants["password"] != 1 {
		t.Errorf("the new company's stats: %+v", st)
	}
	var seeded struct{ Grants map[string]int }
	if getJSON(t, c, s.url+"/_sim/stats?company_uuid="+defaultCompanyUUID, &seeded); seeded.Grants == nil || seeded.Grants["password"] != 0 {
		t.Errorf("the seeded company's stats: %+v", seeded)
	}
	s.shutdown(t)
}

func TestRunTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeCert(t, dir)
	s := start(t, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.url, "https://") {
		t.Fatalf("URL %s", s.url)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := get(c, s.url+"/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stats over TLS: %d", resp.StatusCode)
	}
	s.shutdown(t)
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--rotation", "sideways"},
		{"--tls-cert", "x.pem"},
		{"--no-such-flag"},
		{"extra-arg"},
		{"--listen", "127.0.0.1:0", "--data-centers", "us2", "--company-data-center", "eu9"},
		{"--listen", "127.0.0.1:0", "--data-centers", "glz,us2", "--company-data-center", "glz"},
		{"--companies", "-1"},
	} {
		var stderr lockedBuffer
		if code := run(args, io.Discard, &stderr, make(chan os.Signal)); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	var stderr lockedBuffer
	if code := run([]string{"--help"}, io.Discard, &stderr, nil); code != 0 || !strings.Contains(stderr.String(), "-request-token") ||
		!strings.Contains(stderr.String(), "oauth-error") || !strings.Contains(stderr.String(), "dead_refresh_token_presented") ||
		!strings.Contains(stderr.String(), "Landing zone") || !strings.Contains(stderr.String(), "-landing-zone-serves-all") ||
		!strings.Contains(stderr.String(), "-companies") || !strings.Contains(stderr.String(), "POST /_sim/companies") ||
		!strings.Contains(stderr.String(), "company_uuid") {
		t.Errorf("--help: exit %d\n%s", code, stderr.String())
	}
	// A busy address is an error, not a hang.
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if code := run([]string{"--listen", l.Addr().String()}, io.Discard, &stderr, nil); code != 1 {
		t.Errorf("busy port: exit %d", code)
	}
}

func writeCert(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, pool
}

// --strict-paths serves only the references' literal paths; by default the
// front door's reading (any case, merged slashes) reaches Identity.
func TestRunStrictPaths(t *testing.T) {
	for flags, want := range map[string]int{"": http.StatusUnauthorized, "--strict-paths": http.StatusNotFound} {
		s := start(t, strings.Fields(flags)...)
		resp, err := get(http.DefaultClient, s.url+"//profile/identity/v4/users")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%q: GET //profile/identity/v4/users without a token: %d, want %d", flags, resp.StatusCode, want)
		}
		s.shutdown(t)
	}
}
