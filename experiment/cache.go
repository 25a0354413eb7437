package experiment

import (
	"sync"

	"github.com/fedmo/fedmo/data"
)

// DataCache shares datasets read from files between builds: the first build
// of (source, dir) reads the files, later ones, from any goroutine, get the
// same *data.Dataset values and their fingerprint. The datasets are
// read-only after loading (every run only reads rows and labels; partitions
// are per build), so sharing them changes no result. A failed read is not
// cached. The zero value is ready to use; a nil *DataCache caches nothing.
type DataCache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
	prints  map[[2]*data.Dataset]string
}

type cacheEntry struct {
	once        sync.Once
	train, test *data.Dataset
	err         error
	done        bool // read finished (guarded by DataCache.mu)
}

// load returns the datasets of (source, dir), reading them with read the
// first time.
func (c *DataCache) load(source, dir string, read func(string) (*data.Dataset, *data.Dataset, error)) (*data.Dataset, *data.Dataset, error) {
	if c == nil {
		return read(dir)
	}
	key := source + "\x00" + dir
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*cacheEntry{}
	}
	e, ok := c.entries[key]
	if !ok {
		e = &cacheEntry{}
		c.entries[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.train, e.test, e.err = read(dir) })
	c.mu.Lock()
	e.done = true
	if e.err != nil && c.entries[key] == e {
		delete(c.entries, key) // let a later build try again
	}
	c.mu.Unlock()
	return e.train, e.test, e.err
}

// fingerprint returns data.Fingerprint(train, test), computed once for the
// cached datasets; "" (compute it) for others or a nil cache.
func (c *DataCache) fingerprint(train, test *data.Dataset) string {
	if c == nil {
		return ""
	}
	c.mu.Lock()
	cached := false
	for _, e := range c.entries {
		if e.done && e.err == nil && e.train == train && e.test == test {
			cached = true
			break
		}
	}
	if !cached {
		c.mu.Unlock()
		return ""
	}
	key := [2]*data.Dataset{train, test}
	if fp, ok := c.prints[key]; ok {
		c.mu.Unlock()
		return fp
	}
	c.mu.Unlock()
	fp := data.Fingerprint(train, test) // outside the lock; two racing builds compute the same value
	c.mu.Lock()
	if c.prints == nil {
		c.prints = map[[2]*data.Dataset]string{}
	}
	c.prints[key] = fp
	c.mu.Unlock()
	return fp
}
