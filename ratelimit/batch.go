package ratelimit

import (
	"strconv"
	"sync"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
)

// batchRefusalKey is where a batch request's store holds its *batchRefusal.
// PocketBase copies the batch's store into each operation's event, so a
// limit refusing an operation finds it there.
const batchRefusalKey = "pbchatBatchRateLimitRefusal"

// batchRefusal is the 429 that refused an operation of a batch.
type batchRefusal struct {
	mu         sync.Mutex
	err        error
	retryAfter int
}

func (r *batchRefusal) set(err error, retryAfter int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err, r.retryAfter = err, retryAfter
	}
}

func (r *batchRefusal) get() (retryAfter int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retryAfter, r.err
}

// RefuseBatch makes the batch that e's operation belongs to, if any, answer
// err (a 429) as a whole, with Retry-After: retryAfter seconds.
func RefuseBatch(e *core.RequestEvent, err error, retryAfter int) {
	if batch, ok := e.Get(batchRefusalKey).(*batchRefusal); ok {
		batch.set(err, retryAfter)
	}
}

// bindBatchRefusal makes a batch whose operation a limit refused answer that
// 429, with Retry-After, as a whole. PocketBase would answer 400 "Batch
// transaction failed" with the 429 nested in its data, which clients and
// proxies do not read as "slow down". The batch's transaction has rolled
// back by then: nothing of it is written.
func bindBatchRefusal(app core.App) {
	app.OnBatchRequest().Bind(&hook.Handler[*core.BatchRequestEvent]{
		Id: middlewareID + "Batch",
		Func: func(e *core.BatchRequestEvent) error {
			refusal := &batchRefusal{}
			e.Set(batchRefusalKey, refusal)
			err := e.Next()
			if err == nil {
				return nil
			}
			if retryAfter, limited := refusal.get(); limited != nil {
				e.Response.Header().Set("Retry-After", strconv.Itoa(retryAfter))
				return limited
			}
			return err
		},
	})
}
