package concurtest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FaultHold tells Fault.Processed once the grant happened, while the answer
// is still held: tests act in that window without a front door of their own.
func TestFaultHoldTellsProcessed(t *testing.T) {
	s := newSim(t, Options{Rotation: RotationRotate})
	old := s.NewRefreshToken(testClient, testCompany)
	processed := make(chan struct{}, 1)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultHold, Delay: time.Minute, Processed: processed})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/oauth2/v0/token", strings.NewReader(refreshForm(old).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := s.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-processed
	if s.CurrentRefreshToken(testClient, testCompany) == old {
		t.Fatal("told processed before the grant changed the state")
	}
	select {
	case err := <-done:
		t.Fatalf("answer sent before the hold ended: %v", err)
	default:
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("request succeeded after cancel")
	}
}
