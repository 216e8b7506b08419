package main

import (
	"encoding/hex"
	"testing"
)

func TestLookalike(t *testing.T) {
	creds := `{"request_id":"r","data":{"access_token":"` + "abcdefghijabcdefghijabcdefghij" + `","expires_in":3600,` +
		`"geolocation":"https://us2.api.concursolutions.com","odd":"abc","empty":""}}`
	data, err := lookalike([]byte(creds))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"access_token": 30, "geolocation": 35, "odd": 3, "empty": 0}
	for k, n := range want {
		s, ok := data[k].(string)
		if _, err := hex.DecodeString(s + s); !ok || len(s) != n || err != nil {
			t.Errorf("%s = %q, want %d random hex characters", k, data[k], n)
		}
	}
	if data["access_token"] == "abcdefghijabcdefghijabcdefghij" || data["expires_in"] != 3600.0 || len(data) != 5 {
		t.Errorf("lookalike = %v: strings replaced, other values kept, nothing else", data)
	}
	for _, bad := range []string{``, `{}`, `{"data":{}}`, `{"data":"x"}`} {
		if _, err := lookalike([]byte(bad)); err == nil {
			t.Errorf("lookalike(%q): no error", bad)
		}
	}
}

func TestTokenCalls(t *testing.T) {
	for _, tc := range []struct {
		stats map[string]any
		want  int
	}{
		{map[string]any{"grants": map[string]any{"password": 1.0, "refresh_token": 4.0, "other": 9.0}}, 5},
		{map[string]any{"grants": map[string]any{"password": 1.0}}, 1},
		{map[string]any{"grants": map[string]any{}}, 0},
		{map[string]any{"grants": "none"}, 0},
		{nil, 0},
	} {
		if got := tokenCalls(tc.stats); got != tc.want {
			t.Errorf("tokenCalls(%v) = %d, want %d", tc.stats, got, tc.want)
		}
	}
}
