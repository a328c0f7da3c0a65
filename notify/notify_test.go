package notify

import (
	"net/http"
	"testing"
)

func TestSign(t *testing.T) {
	// RFC 4231, test case 2.
	got := Sign("Jefe", []byte("what do ya want for nothing?"))
	if want := "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   outcome
	}{
		{http.StatusOK, delivered},
		{http.StatusCreated, delivered},
		{http.StatusNoContent, delivered},
		{http.StatusTooManyRequests, retry},
		{http.StatusRequestTimeout, retry},
		{http.StatusInternalServerError, retry},
		{http.StatusServiceUnavailable, retry},
		{http.StatusBadRequest, give},
		{http.StatusUnauthorized, give},
		{http.StatusRequestEntityTooLarge, give},
	} {
		if got := classify(tc.status); got != tc.want {
			t.Errorf("classify(%d) = %d, want %d", tc.status, got, tc.want)
		}
	}
}
