package experiment

import (
	"errors"
	"os"
	"sync"
	"testing"

	"codeberg.org/sbinet/npyio"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/data"
)

func TestDataCacheSharesAndCountsReads(t *testing.T) {
	var c DataCache
	reads := 0
	var mu sync.Mutex
	read := func(dir string) (*data.Dataset, *data.Dataset, error) {
		mu.Lock()
		reads++
		mu.Unlock()
		if dir == "bad" {
			return nil, nil, errors.New("no such data")
		}
		d := &data.Dataset{X: []float64{1, 2}, Y: []int{0, 1}, D: 1, Classes: 2}
		return d, d, nil
	}
	var wg sync.WaitGroup
	got := make([]*data.Dataset, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _, _ = c.load("npy", "a", read)
			c.fingerprint(got[i], got[i])
		}()
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatal("concurrent loads of one directory returned different datasets")
		}
	}
	if reads != 1 {
		t.Errorf("%d reads of one directory, want 1", reads)
	}
	if fp := c.fingerprint(got[0], got[0]); fp != data.Fingerprint(got[0], got[0]) {
		t.Errorf("cached fingerprint %s, want %s", fp, data.Fingerprint(got[0], got[0]))
	}
	if fp := c.fingerprint(&data.Dataset{}, nil); fp != "" {
		t.Errorf("fingerprint of uncached datasets = %q, want \"\" (compute it)", fp)
	}
	if other, _, _ := c.load("mnist", "a", read); other == got[0] || reads != 2 {
		t.Error("another source with the same directory shared the entry")
	}
	for range 2 {
		if _, _, err := c.load("npy", "bad", read); err == nil {
			t.Error("a failed read returned no error")
		}
	}
	if reads != 4 {
		t.Errorf("%d reads, want a failed read retried (4)", reads)
	}
	var none *DataCache
	if _, _, err := none.load("npy", "a", read); err != nil || none.fingerprint(got[0], got[0]) != "" {
		t.Error("a nil cache does not just read")
	}
}

// TestCachedBuildEqualsUncached: builds through the cache are the same
// setups (fingerprint, partition) as uncached ones.
func TestCachedBuildEqualsUncached(t *testing.T) {
	dir := t.TempDir()
	train := &data.Dataset{D: 2, Classes: 2}
	for i := range 40 {
		train.X = append(train.X, float64(i), float64(i%3))
		train.Y = append(train.Y, i%2)
	}
	if err := writeTinyNPY(dir, train); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("clients: 4\nparticipation: 2\nmodel: {name: softmax}\ndata: {name: npy, partition: iid}"), []string{"data.dir=" + dir})
	if err != nil {
		t.Fatal(err)
	}
	cache := &DataCache{}
	plain, err := Build(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s, err := Build(cfg, Options{Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		if s.Fingerprint != plain.Fingerprint || len(s.Data.Parts) != 4 || s.Data.Parts[3][0] != plain.Data.Parts[3][0] {
			t.Errorf("cached build %s %v, uncached %s %v", s.Fingerprint, s.Data.Parts, plain.Fingerprint, plain.Data.Parts)
		}
	}
}

func writeTinyNPY(dir string, d *data.Dataset) error {
	for _, f := range []string{data.NPYTrainX, data.NPYTestX} {
		if err := data.WriteNPYFloat64(dir+"/"+f, d.X, []int{d.Len(), d.D}); err != nil {
			return err
		}
	}
	y := make([]int64, d.Len())
	for i, v := range d.Y {
		y[i] = int64(v)
	}
	for _, f := range []string{data.NPYTrainY, data.NPYTestY} {
		fh, err := os.Create(dir + "/" + f)
		if err != nil {
			return err
		}
		if err := npyio.Write(fh, y); err != nil {
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	return nil
}
