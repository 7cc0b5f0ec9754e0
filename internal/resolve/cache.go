package resolve

import (
	"crypto/sha256"
	"fmt"
	"sync"
)

// Cache holds plans, computed once per writer schema id and reader schema fingerprint. The zero
// Cache is ready to use, and it is safe for concurrent use: callers that ask for a pair not seen
// yet wait for the one that computes it. Entries never expire: a registry id always names the
// same schema, and a process reads with few reader schemas.
type Cache struct {
	mu      sync.RWMutex
	readers map[string]*readerEntry // reader schema text -> its parse and fingerprint
	plans   map[planKey]*planEntry
}

// fingerprint is the SHA-256 of a reader schema's resolution form: its parsing canonical form
// plus what resolution also reads (aliases, defaults, logical types), so that two texts of one
// schema share their plans and two schemas that read differently do not.
type fingerprint [sha256.Size]byte

type readerEntry struct {
	once   sync.Once
	schema *schema
	fp     fingerprint
	err    error
}

type planKey struct {
	writerID int
	reader   fingerprint
}

type planEntry struct {
	once sync.Once
	plan *Plan
	err  error
}

// Plan returns the plan for data written with writerSchema, registered under writerID, and read
// with readerSchema. The first call for a pair makes the plan, or the error, that every call
// returns; writerSchema is parsed only then, so it must be the schema that writerID names.
func (c *Cache) Plan(writerID int, writerSchema, readerSchema string) (*Plan, error) {
	re := entry(c, &c.readers, readerSchema)
	re.once.Do(func() {
		s, err := parseSchema(readerSchema)
		if err != nil {
			re.err = fmt.Errorf("resolve: reader schema: %w: %v", ErrSchema, err)
			return
		}
		form, _ := canonical(s, true)
		re.schema, re.fp = s, sha256.Sum256([]byte(form))
	})
	if re.err != nil {
		return nil, re.err
	}
	pe := entry(c, &c.plans, planKey{writerID, re.fp})
	pe.once.Do(func() {
		w, err := parseSchema(writerSchema)
		if err != nil {
			pe.err = fmt.Errorf("resolve: writer schema id %d: %w: %v", writerID, ErrSchema, err)
			return
		}
		pe.plan, pe.err = newPlan(w, re.schema)
	})
	return pe.plan, pe.err
}

// entry is the entry of *table for key, made empty if there is none yet.
func entry[K comparable, E any](c *Cache, table *map[K]*E, key K) *E {
	c.mu.RLock()
	e, ok := (*table)[key]
	c.mu.RUnlock()
	if ok {
		return e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := (*table)[key]; ok {
		return e
	}
	if *table == nil {
		*table = make(map[K]*E)
	}
	e = new(E)
	(*table)[key] = e
	return e
}
