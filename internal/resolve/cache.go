package resolve

import (
	"crypto/sha256"
	"fmt"
	"sync"
)

// Cache holds plans, computed once per writer schema id and reader schema fingerprint. The zero
// Cache is ready to use, and it is safe for concurrent use. Entries never expire: a registry id
// always names the same schema, and a process reads with few reader schemas.
type Cache struct {
	mu      sync.RWMutex
	readers map[string]readerEntry // reader schema text -> its parse and fingerprint
	plans   map[planKey]planEntry
}

// fingerprint is the SHA-256 of a reader schema's resolution form: its parsing canonical form
// plus what resolution also reads (aliases, defaults, logical types), so that two texts of one
// schema share their plans and two schemas that read differently do not.
type fingerprint [sha256.Size]byte

type readerEntry struct {
	schema *schema
	fp     fingerprint
	err    error
}

type planKey struct {
	writerID int
	reader   fingerprint
}

type planEntry struct {
	plan *Plan
	err  error
}

// Plan returns the plan for data written with writerSchema, registered under writerID, and read
// with readerSchema. The first call for a pair makes the plan, or the error, that later calls
// return; writerSchema is parsed only then, so it must be the schema that writerID names.
func (c *Cache) Plan(writerID int, writerSchema, readerSchema string) (*Plan, error) {
	c.mu.RLock()
	re, ok := c.readers[readerSchema]
	var pe planEntry
	var havePlan bool
	if ok && re.err == nil {
		pe, havePlan = c.plans[planKey{writerID, re.fp}]
	}
	c.mu.RUnlock()
	if havePlan {
		return pe.plan, pe.err
	}
	if !ok {
		re = readerEntryFor(readerSchema)
		c.mu.Lock()
		if c.readers == nil {
			c.readers = make(map[string]readerEntry)
		}
		c.readers[readerSchema] = re
		c.mu.Unlock()
	}
	if re.err != nil {
		return nil, re.err
	}
	key := planKey{writerID, re.fp}
	// Two goroutines may both make a plan for a new pair: it costs CPU only, and the first
	// one stored is the one every caller gets from then on.
	pe = planEntry{}
	if w, err := parseSchema(writerSchema); err != nil {
		pe.err = fmt.Errorf("resolve: writer schema id %d: %w: %v", writerID, ErrSchema, err)
	} else {
		pe.plan, pe.err = newPlan(w, re.schema)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.plans == nil {
		c.plans = make(map[planKey]planEntry)
	}
	if first, ok := c.plans[key]; ok {
		return first.plan, first.err
	}
	c.plans[key] = pe
	return pe.plan, pe.err
}

func readerEntryFor(text string) readerEntry {
	s, err := parseSchema(text)
	if err != nil {
		return readerEntry{err: fmt.Errorf("resolve: reader schema: %w: %v", ErrSchema, err)}
	}
	form, _ := canonical(s, true)
	return readerEntry{schema: s, fp: sha256.Sum256([]byte(form))}
}
