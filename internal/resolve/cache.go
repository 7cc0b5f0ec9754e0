package resolve

import (
	"crypto/sha256"
	"errors"
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
// returns; writerSchema is parsed only then, so it must be the schema that writerID names. A
// failure is returned to every caller of the pair, never a nil plan without an error.
func (c *Cache) Plan(writerID int, writerSchema, readerSchema string) (*Plan, error) {
	re := entry(c, &c.readers, readerSchema)
	re.once.Do(func() {
		s, err := parseSchema(readerSchema)
		if err != nil {
			re.err = fmt.Errorf("resolve: reader schema: %w: %v", ErrSchema, err)
			return
		}
		form := canonical(s)
		re.schema, re.fp = s, sha256.Sum256([]byte(form))
	})
	if re.err != nil {
		return nil, re.err
	}
	pe := entry(c, &c.plans, planKey{writerID, re.fp})
	pe.once.Do(func() {
		defer func() {
			// A panic inside once.Do would leave the entry done with no plan and no error.
			if v := recover(); v != nil {
				pe.plan, pe.err = nil, fmt.Errorf("resolve: internal error planning writer schema id %d: %v", writerID, v)
			}
		}()
		w, err := parseSchema(writerSchema)
		if err != nil {
			pe.err = fmt.Errorf("resolve: writer schema id %d: %w: %v", writerID, ErrSchema, err)
			return
		}
		pe.plan, pe.err = buildPlan(w, re.schema)
		if pe.plan == nil && pe.err == nil {
			pe.err = errors.New("resolve: no plan was made") // never cache a failure as a success
		}
	})
	return pe.plan, pe.err
}

// buildPlan is newPlan; a test replaces it.
var buildPlan = newPlan

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
