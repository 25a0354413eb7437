package data

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/fedmo/fedmo/atomicfile"
)

// ReadPartitionFile reads a partition from a JSON file holding a list of
// index lists, one per client: [[0,5,...],[1,2,...],...]. Every index must
// lie in [0, n) and belong to at most one client; no client may be empty;
// if clients is positive the file must list exactly that many clients.
// Rows that no client lists stay unused. Each returned list is sorted.
func ReadPartitionFile(path string, n, clients int) ([][]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: partition file: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	var parts [][]int
	if err := dec.Decode(&parts); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("data: partition file %s: want a JSON list of lists of row indices: %w", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data: partition file %s: unexpected data after the list of index lists", path)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("data: partition file %s lists no clients", path)
	}
	if clients > 0 && len(parts) != clients {
		return nil, fmt.Errorf("data: partition file %s lists %d clients, want %d", path, len(parts), clients)
	}
	owner := make([]int32, n) // 0 = unassigned, else client+1
	for i, part := range parts {
		if len(part) == 0 {
			return nil, fmt.Errorf("data: partition file %s: client %d has no rows, want at least one", path, i)
		}
		for _, x := range part {
			if x < 0 || x >= n {
				return nil, fmt.Errorf("data: partition file %s: client %d lists row %d, want an index in [0, %d)", path, i, x, n)
			}
			if o := owner[x]; o != 0 {
				if int(o-1) == i {
					return nil, fmt.Errorf("data: partition file %s: client %d lists row %d twice", path, i, x)
				}
				return nil, fmt.Errorf("data: partition file %s: row %d is in clients %d and %d, want at most one", path, x, o-1, i)
			}
			owner[x] = int32(i + 1)
		}
		slices.Sort(part)
	}
	return parts, nil
}

// WritePartitionFile writes parts atomically (a temporary file in the same
// directory, synced, then renamed) in the format ReadPartitionFile reads: a
// JSON list of index lists, [[0,5,...],[...]], and a newline.
func WritePartitionFile(path string, parts [][]int) error {
	out := make([][]int, len(parts))
	for i, p := range parts {
		for _, x := range p {
			if x < 0 {
				return fmt.Errorf("data: partition file %s: client %d lists row %d, want indices >= 0", path, i, x)
			}
		}
		out[i] = p
		if p == nil {
			out[i] = []int{}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("data: partition file %s: %w", path, err)
	}
	return atomicfile.WriteFunc(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}
