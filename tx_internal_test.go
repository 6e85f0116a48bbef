package exactly

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestWriteTurn: with a SingleWriter dialect a second write transaction
// waits for the first to end its turn, in this process, and gives up
// when its context ends; releasing twice frees one turn. Without one,
// turns never wait.
func TestWriteTurn(t *testing.T) {
	s := &Sink{writeSlot: make(chan struct{}, 1)}
	ctx := context.Background()
	release, err := s.writeTurn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.writeTurn(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second turn while the first is held: %v, want the context's deadline", err)
	}
	got := make(chan struct{})
	go func() {
		r, err := s.writeTurn(ctx)
		if err == nil {
			r()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("second turn began while the first was held")
	case <-time.After(20 * time.Millisecond):
	}
	release()
	release() // a second release must not free another writer's turn
	<-got
	r, err := s.writeTurn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r()

	free := &Sink{}
	for range 3 {
		if _, err := free.writeTurn(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
