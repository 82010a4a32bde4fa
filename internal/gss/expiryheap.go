package gss

// expiryItem is one element of an expiryHeap: a key and the time it
// expires, in Unix nanoseconds.
type expiryItem[K any] struct {
	key K
	at  int64
}

// expiryHeap is a binary min-heap of keys by expiry, for the memories that
// forget entries in expiry order without scanning a map (the replay cache,
// the Importer's imported ids). It is written out rather than built on
// container/heap, whose Push and Pop take and return the element as an
// interface and so allocate on every insertion.
type expiryHeap[K any] []expiryItem[K]

// push adds it.
func (h *expiryHeap[K]) push(it expiryItem[K]) {
	*h = append(*h, it)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if s[parent].at <= s[i].at {
			break
		}
		s[parent], s[i] = s[i], s[parent]
		i = parent
	}
}

// pop removes and returns the item with the soonest expiry; h must not be
// empty.
func (h *expiryHeap[K]) pop() expiryItem[K] {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		least := i
		if l := 2*i + 1; l < len(s) && s[l].at < s[least].at {
			least = l
		}
		if r := 2*i + 2; r < len(s) && s[r].at < s[least].at {
			least = r
		}
		if least == i {
			break
		}
		s[i], s[least] = s[least], s[i]
		i = least
	}
	*h = s
	return top
}
