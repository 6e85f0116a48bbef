// Package spark reads the offset and commit logs of a Spark Structured
// Streaming checkpoint, so that exactly can take over a Kafka → SQL
// pipeline from its last committed micro-batch. It only reads files.
//
// The format (Spark's OffsetSeqLog and CommitLog, both HDFSMetadataLog):
// offsets/N is written before micro-batch N runs — a version line "v1", a
// line of JSON metadata (batchWatermarkMs, batchTimestampMs, conf), then
// one line per source of the query: for a Kafka source a JSON object
// {"topic":{"0":123,"1":456}} of the offsets the batch reads up to
// (exclusive), or "-" when the source has no offset yet. commits/N is
// written after batch N's sink finished; its presence is what "committed"
// means. A batch with offsets/N and no commits/N was planned, and may have
// been written to the sink in part or in full, but was not committed: on
// restart Spark runs it again.
package spark

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/exactly/exactly"
)

// Checkpoint is what a checkpoint's logs say about the Kafka offsets.
type Checkpoint struct {
	// Dir is where the checkpoint is: a directory, or a storage URL
	// without its query (a SAS token is a secret).
	Dir string
	// LastCommitted is the id of the last micro-batch with both an offsets
	// and a commits file; -1 when no batch was ever committed.
	LastCommitted int64
	// Next holds, per partition, the offset the next micro-batch starts
	// at: the end offsets of LastCommitted.
	Next map[exactly.TP]int64
	// Uncommitted are the micro-batches planned after LastCommitted that
	// have no commit, in order (normally at most one).
	Uncommitted []Batch
	// Ignored describes source lines that are not Kafka offsets (other
	// sources of the query).
	Ignored []string
}

// Batch is a planned micro-batch's offset range per partition: From (the
// previous batch's end, -1 when the partition is new to it) to To,
// exclusive.
type Batch struct {
	ID       int64
	From, To map[exactly.TP]int64
}

// Store is where a checkpoint's files are: a local directory (Dir) or a
// blob container (Azure). Names are slash-separated and relative to the
// checkpoint's root.
type Store interface {
	// List returns the names of the files directly under dir; a
	// directory that does not exist is an error wrapping fs.ErrNotExist,
	// or no names.
	List(ctx context.Context, dir string) ([]string, error)
	// ReadFile returns the content of the file name.
	ReadFile(ctx context.Context, name string) ([]byte, error)
	// Where says where name is, for messages: never a secret.
	Where(name string) string
}

// Dir is a checkpoint in a local (or mounted) directory.
type Dir string

// List implements Store.
func (d Dir) List(_ context.Context, dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(string(d), filepath.FromSlash(dir)))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// ReadFile implements Store.
func (d Dir) ReadFile(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), filepath.FromSlash(name)))
}

// Where implements Store.
func (d Dir) Where(name string) string {
	if name == "" {
		return string(d)
	}
	return filepath.Join(string(d), filepath.FromSlash(name))
}

// Read reads dir's offsets/ and commits/ logs.
func Read(dir string) (*Checkpoint, error) {
	return ReadStore(context.Background(), Dir(dir))
}

// ReadStore reads the offsets/ and commits/ logs of the checkpoint in st.
func ReadStore(ctx context.Context, st Store) (*Checkpoint, error) {
	dir := st.Where("")
	offsetIDs, err := batchIDs(ctx, st, "offsets")
	if err != nil {
		return nil, err
	}
	if len(offsetIDs) == 0 {
		return nil, fmt.Errorf("reading Spark checkpoint %s: no offsets/N files: not a Structured Streaming checkpoint, or no micro-batch was ever planned", dir)
	}
	commitIDs, err := batchIDs(ctx, st, "commits")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	committed := map[int64]bool{}
	for _, id := range commitIDs {
		committed[id] = true
	}
	cp := &Checkpoint{Dir: dir, LastCommitted: -1}
	for _, id := range offsetIDs {
		if committed[id] {
			cp.LastCommitted = id
		}
	}
	if cp.LastCommitted >= 0 {
		cp.Next, cp.Ignored, err = readOffsets(ctx, st, cp.LastCommitted)
		if err != nil {
			return nil, err
		}
	}
	prev := cp.Next
	for _, id := range offsetIDs {
		if id <= cp.LastCommitted {
			continue
		}
		to, _, err := readOffsets(ctx, st, id)
		if err != nil {
			return nil, err
		}
		b := Batch{ID: id, From: map[exactly.TP]int64{}, To: to}
		for tp := range to {
			from, ok := prev[tp]
			if !ok {
				from = -1
			}
			b.From[tp] = from
		}
		cp.Uncommitted = append(cp.Uncommitted, b)
		prev = to
	}
	return cp, nil
}

// batchIDs lists the batch files of a metadata log directory, sorted.
// Spark's own temporary and checksum files (.N.crc, .tmp) are skipped.
func batchIDs(ctx context.Context, st Store, dir string) ([]int64, error) {
	names, err := st.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("reading Spark checkpoint log %s: %w", st.Where(dir), err)
	}
	var ids []int64
	for _, name := range names {
		id, err := strconv.ParseInt(name, 10, 64)
		if err != nil || id < 0 {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// readOffsets parses offsets/id and returns the Kafka partitions' end
// offsets of that batch, merged over every Kafka source of the query.
func readOffsets(ctx context.Context, st Store, id int64) (map[exactly.TP]int64, []string, error) {
	name := "offsets/" + strconv.FormatInt(id, 10)
	path := st.Where(name)
	raw, err := st.ReadFile(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("reading Spark offsets file: %w", err)
	}
	bad := func(line int, format string, args ...any) error {
		return fmt.Errorf("reading Spark offsets file %s line %d: %s", path, line, fmt.Sprintf(format, args...))
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading Spark offsets file %s: %w", path, err)
	}
	if len(lines) < 2 {
		return nil, nil, bad(len(lines), "incomplete: expected a version line, a metadata line and one line per source")
	}
	if lines[0] != "v1" {
		return nil, nil, bad(1, "got version %q, expected v1 (the offset log format of Spark 2.1 to 4.x)", lines[0])
	}
	out := map[exactly.TP]int64{}
	var ignored []string
	for i, line := range lines[2:] {
		n := i + 3
		line = strings.TrimSpace(line)
		if line == "" || line == "-" { // "-": the source had no offset yet
			continue
		}
		var src map[string]map[string]int64
		if err := json.Unmarshal([]byte(line), &src); err != nil {
			ignored = append(ignored, fmt.Sprintf("source %d: not Kafka offsets: %s", i, clip(line)))
			continue
		}
		for topic, parts := range src {
			for ps, off := range parts {
				p, err := strconv.ParseInt(ps, 10, 32)
				if err != nil || p < 0 {
					return nil, nil, bad(n, "topic %s: partition %q is not a partition number", topic, ps)
				}
				if off < 0 {
					return nil, nil, bad(n, "%s[%d]: offset %d is not a resolved offset", topic, p, off)
				}
				tp := exactly.TP{Topic: topic, Partition: int32(p)}
				if prev, dup := out[tp]; dup && prev != off {
					return nil, nil, bad(n, "%s appears in two sources with offsets %d and %d", tp, prev, off)
				}
				out[tp] = off
			}
		}
	}
	return out, ignored, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
