package chat

import (
	"testing"
	"time"
)

func TestEventRetention(t *testing.T) {
	tests := []struct {
		name    string
		in      time.Duration
		want    time.Duration
		wantErr bool
	}{
		{"zero is the default", 0, DefaultEventRetention, false},
		{"kept", 72 * time.Hour, 72 * time.Hour, false},
		{"negative", -time.Hour, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Settings{EventRetention: tt.in}.WithDefaults()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error for %s", tt.in)
				}
				return
			}
			if err != nil || got.EventRetention != tt.want {
				t.Fatalf("got %s, %v; want %s", got.EventRetention, err, tt.want)
			}
		})
	}
	if DefaultEventRetention != 30*24*time.Hour {
		t.Fatalf("default %s, want 30 days", DefaultEventRetention)
	}
}
