package chat

import (
	"testing"
	"time"
)

func TestRateLimitsDefaults(t *testing.T) {
	got, err := Settings{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := got.RateLimits
	if r.Disabled || r.Messages != DefaultMessagesRateLimit || r.Reactions != DefaultReactionsRateLimit ||
		r.Media != DefaultMediaRateLimit || r.Writes != DefaultWritesRateLimit ||
		r.SignUps != DefaultSignUpsRateLimit || r.SignIns != DefaultSignInsRateLimit ||
		r.AccountEmails != DefaultAccountEmailsRateLimit || r.RealtimeConnects != DefaultRealtimeConnectsRateLimit {
		t.Fatalf("zero RateLimits defaulted to %+v", r)
	}
	// The documented figures (docs/operations.md, "Rate limits").
	for name, c := range map[string]struct {
		got  RateLimit
		max  int
		secs int64
	}{
		"SignUps":          {r.SignUps, 10, 3600},
		"SignIns":          {r.SignIns, 30, 60},
		"AccountEmails":    {r.AccountEmails, 5, 600},
		"RealtimeConnects": {r.RealtimeConnects, 120, 60},
	} {
		if c.got.MaxRequests != c.max || c.got.Seconds() != c.secs {
			t.Errorf("default %s = %d per %ds, want %d per %ds", name, c.got.MaxRequests, c.got.Seconds(), c.max, c.secs)
		}
	}

	// A half-set limit keeps the other half's default.
	got, err = Settings{RateLimits: RateLimits{Messages: RateLimit{MaxRequests: 3}, Media: RateLimit{Duration: time.Minute * 5}}}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if m := got.RateLimits.Messages; m.MaxRequests != 3 || m.Duration != DefaultMessagesRateLimit.Duration {
		t.Errorf("Messages = %+v", m)
	}
	if m := got.RateLimits.Media; m.MaxRequests != DefaultMediaRateLimit.MaxRequests || m.Seconds() != 300 {
		t.Errorf("Media = %+v", m)
	}

	for _, bad := range []RateLimits{
		{Messages: RateLimit{MaxRequests: -1}},
		{Reactions: RateLimit{Duration: -time.Second}},
		{Media: RateLimit{Duration: 500 * time.Millisecond}},
		{Writes: RateLimit{Duration: 1500 * time.Millisecond}},
		{SignUps: RateLimit{MaxRequests: -2}},
		{SignIns: RateLimit{Duration: 100 * time.Millisecond}},
		{AccountEmails: RateLimit{Duration: -time.Minute}},
		{RealtimeConnects: RateLimit{Duration: 2500 * time.Millisecond}},
	} {
		if _, err := (Settings{RateLimits: bad}).WithDefaults(); err == nil {
			t.Errorf("WithDefaults accepted RateLimits %+v", bad)
		}
	}
}
