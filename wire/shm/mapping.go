package shm

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/fedmo/fedmo/internal/le"
)

// mapping is a file of the shared directory mapped into memory
// (MAP_SHARED), so that a vector moves with one copy in user space: no
// read or write system call, no page-cache bookkeeping per 4 KiB page.
type mapping struct {
	f *os.File

	mu   sync.RWMutex // copies hold it shared; remapping exclusive
	data []byte
	// retired are mappings that the file's growth replaced: views and
	// reserved regions may still point into them, so they stay until
	// release.
	retired [][]byte
}

// openMapping maps the file at path: read-only for a reader, read-write
// (created, or truncated) for the writer.
func openMapping(path string, writer bool) (*mapping, error) {
	flag := os.O_RDONLY
	if writer {
		flag = os.O_RDWR | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, err
	}
	m := &mapping{f: f}
	if !writer {
		if err := m.remap(0, false); err != nil {
			f.Close()
			return nil, err
		}
	}
	return m, nil
}

// remap maps the file anew: grown to size first if grow (the writer),
// else at its current size (a reader, after the writer grew it).
func (m *mapping) remap(size int64, grow bool) error {
	if grow {
		if err := m.f.Truncate(size); err != nil {
			return err
		}
	} else {
		fi, err := m.f.Stat()
		if err != nil {
			return err
		}
		size = fi.Size()
	}
	if m.data != nil {
		m.retired = append(m.retired, m.data)
		m.data = nil
	}
	if size == 0 {
		return nil
	}
	prot := syscall.PROT_READ
	if grow {
		prot |= syscall.PROT_WRITE
	}
	data, err := syscall.Mmap(int(m.f.Fd()), 0, int(size), prot, syscall.MAP_SHARED)
	if err != nil {
		return err
	}
	m.data = data
	return nil
}

// room returns the mapped bytes [off, end) of the writer's file, growing
// the file (at least doubling it) if they lie past its end, with m.mu
// held (the caller releases it).
func (m *mapping) room(off, end int64) ([]byte, error) {
	m.mu.Lock()
	if end > int64(len(m.data)) {
		if err := m.remap(max(end, 2*int64(len(m.data))), true); err != nil {
			return nil, err
		}
	}
	return m.data[off:end], nil
}

// reserve returns n float64 values at byte offset off of the writer's
// file, as a slice of its mapping (little-endian machines only), valid
// until release.
func (m *mapping) reserve(n int, off int64) ([]float64, error) {
	b, err := m.room(off, off+int64(8*n))
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return le.Floats(b), nil
}

// put copies v into the file at byte offset off.
func (m *mapping) put(v []float64, off int64) error {
	b, err := m.room(off, off+int64(8*len(v)))
	defer m.mu.Unlock()
	if err != nil {
		return err
	}
	return guard(func() {
		if le.Native {
			copy(b, le.Bytes(v))
		} else {
			le.Encode(b, v)
		}
	})
}

// covering returns the mapped bytes [off, end), remapping first if the
// writer grew the file since it was mapped, with m.mu held shared (the
// caller releases it). It reports errTruncated if the file ends before.
func (m *mapping) covering(off, end int64) ([]byte, error) {
	m.mu.RLock()
	if end > int64(len(m.data)) {
		m.mu.RUnlock()
		m.mu.Lock()
		err := m.remap(0, false)
		m.mu.Unlock()
		m.mu.RLock()
		if err != nil {
			return nil, err
		}
	}
	if end > int64(len(m.data)) {
		return nil, errTruncated
	}
	return m.data[off:end], nil
}

// view returns the float64 values at byte offset off as a slice of the
// mapping (little-endian machines only), valid until release.
func (m *mapping) view(n int, off int64) ([]float64, error) {
	b, err := m.covering(off, off+int64(8*n))
	m.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return le.Floats(b), nil
}

// release unmaps the retired mappings.
func (m *mapping) release() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, b := range m.retired {
		errs = append(errs, syscall.Munmap(b))
	}
	m.retired = nil
	return errors.Join(errs...)
}

// get copies the float64 values at byte offset off into dst. It reports
// errTruncated if the file ends before them.
func (m *mapping) get(dst []float64, off int64) error {
	end := off + int64(8*len(dst))
	b, err := m.covering(off, end)
	defer m.mu.RUnlock()
	if err != nil {
		return err
	}
	return guard(func() {
		if le.Native {
			copy(le.Bytes(dst), b)
		} else if len(dst) > 0 {
			le.Decode(dst, b)
		}
	})
}

func (m *mapping) close() error {
	err := m.release()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data != nil {
		err = errors.Join(err, syscall.Munmap(m.data))
		m.data = nil
	}
	return errors.Join(err, m.f.Close())
}

// guard runs a copy from or to mapped memory and turns the fault of a
// file truncated behind the mapping (SIGBUS) into an error instead of a
// crash: another process may shrink a shared file.
func guard(copyFn func()) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (%v)", errTruncated, r)
		}
	}()
	copyFn()
	return nil
}
