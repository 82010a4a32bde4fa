package handoff

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func TestDeferred(t *testing.T) {
	var mu sync.Mutex
	var sent []int
	got := make(chan struct{}, 10)
	d := NewDeferred(&mu, time.Hour, func(m int) { sent = append(sent, m); got <- struct{}{} })

	// Queued messages wait for the owner's next send, then go out first
	// and in order.
	d.Add(1, false)
	d.Add(2, false)
	mu.Lock()
	if len(sent) != 0 || d.LenLocked() != 2 {
		t.Fatalf("sent %v, waiting %d; want nothing sent, 2 waiting", sent, d.LenLocked())
	}
	d.FlushLocked()
	sent = append(sent, 100) // the owner's own message
	mu.Unlock()
	// now sends at once, with what waits ahead of it.
	d.Add(3, false)
	d.Add(4, true)
	mu.Lock()
	if want := []int{1, 2, 100, 3, 4}; !slices.Equal(sent, want) {
		t.Errorf("sent %v, want %v", sent, want)
	}
	mu.Unlock()

	// With nothing else to ride on, the delay sends it.
	var mu2 sync.Mutex
	d2 := NewDeferred(&mu2, 10*time.Millisecond, func(m int) { got <- struct{}{} })
	for range len(got) {
		<-got
	}
	d2.Add(5, false)
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the delay did not send the waiting message")
	}
	d2.Add(6, false) // the timer is re-armed for the next one
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the re-armed delay did not send the second message")
	}
}
