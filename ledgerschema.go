package exactly

// The ledger tables, described once. Each dialect renders this description
// into its own DDL (Dialect.LedgerDDL: its types, its way of saying "if
// not exists", its identity column); the columns later versions added are
// added in place to older ledgers by Sink.EnsureLedger. A ledger column
// is added here, never in a dialect.

// LedgerType is the kind of a ledger column, which each dialect maps to
// one of its types.
type LedgerType int

const (
	// LedgerKey is a name that identifies (pipeline, topic): bounded text
	// compared exactly, byte for byte, as Kafka compares topic names.
	LedgerKey LedgerType = iota
	// LedgerString is bounded text (an id, a status, a writer's name).
	LedgerString
	// LedgerText is text of any length (errors, notes, headers).
	LedgerText
	// LedgerBytes is a byte string of any length (a record's key, value).
	LedgerBytes
	// LedgerInt32 and LedgerInt64 are signed integers.
	LedgerInt32
	LedgerInt64
	// LedgerTime is an instant, stored in UTC to the microsecond.
	LedgerTime
	// LedgerSerial is a 64-bit id the database assigns in insert order.
	LedgerSerial
)

// LedgerColumn is one column of a ledger table.
type LedgerColumn struct {
	Name string
	Type LedgerType
	// Size bounds LedgerKey and LedgerString columns, in characters.
	Size int
	Null bool
	// Added marks a column later versions introduced: CREATE TABLE leaves
	// it out and Sink.EnsureLedger adds it (nullable) when missing, so a
	// new ledger and an old one end the same.
	Added bool
}

// LedgerIndex is a secondary index of a ledger table.
type LedgerIndex struct {
	Name    string
	Columns []string
}

// LedgerTable is one ledger table.
type LedgerTable struct {
	Name    string
	Columns []LedgerColumn
	Key     []string // the primary key
	Indexes []LedgerIndex
}

// Created returns the columns CREATE TABLE writes: all but the added ones.
func (t LedgerTable) Created() []LedgerColumn {
	var out []LedgerColumn
	for _, c := range t.Columns {
		if !c.Added {
			out = append(out, c)
		}
	}
	return out
}

// Definitions returns the column definitions CREATE TABLE writes, each
// the quoted name and what typ says (its type and nullability).
func (t LedgerTable) Definitions(quote func(string) string, typ func(LedgerColumn) string) []string {
	var out []string
	for _, c := range t.Created() {
		out = append(out, quote(c.Name)+" "+typ(c))
	}
	return out
}

// Bounded sizes of the ledger's names: a Kafka topic name is at most 249
// characters; pipeline and writer names, start_from, 255.
const (
	nameSize    = 255
	topicSize   = 249
	batchIDSize = 64
)

// LedgerTables returns the ledger tables, in the order they are created.
func LedgerTables() []LedgerTable {
	pipeline := LedgerColumn{Name: "pipeline", Type: LedgerKey, Size: nameSize}
	topic := LedgerColumn{Name: "topic", Type: LedgerKey, Size: topicSize}
	partition := LedgerColumn{Name: "partition", Type: LedgerInt32}
	writer := LedgerColumn{Name: "writer", Type: LedgerString, Size: nameSize}
	batchID := LedgerColumn{Name: "batch_id", Type: LedgerString, Size: batchIDSize}
	count := func(name string) LedgerColumn { return LedgerColumn{Name: name, Type: LedgerInt32} }
	return []LedgerTable{
		{Name: "exactly_offsets", Key: []string{"pipeline", "topic", "partition"}, Columns: []LedgerColumn{
			pipeline, topic, partition,
			{Name: "next_offset", Type: LedgerInt64}, writer, {Name: "updated_at", Type: LedgerTime},
			// leader_epoch: of the last record applied below next_offset
			// (KIP-320: a restart seeks with it and sees a log truncated
			// meanwhile).
			{Name: "leader_epoch", Type: LedgerInt32, Null: true, Added: true},
			// topic_id: the topic's id when the row was seeded (a
			// recreated topic has another).
			{Name: "topic_id", Type: LedgerText, Null: true, Added: true},
		}},
		{Name: "exactly_batches", Key: []string{"batch_id"}, Columns: []LedgerColumn{
			batchID, pipeline, topic, partition,
			{Name: "from_offset", Type: LedgerInt64}, {Name: "to_offset", Type: LedgerInt64},
			{Name: "min_offset", Type: LedgerInt64, Null: true}, {Name: "max_offset", Type: LedgerInt64, Null: true},
			count("records"), count("upserted"), count("deleted"), count("skipped"), count("dead_lettered"),
			{Name: "hash", Type: LedgerString, Size: 128}, {Name: "status", Type: LedgerString, Size: 16},
			{Name: "error", Type: LedgerText, Null: true}, writer,
			{Name: "started_at", Type: LedgerTime}, {Name: "committed_at", Type: LedgerTime, Null: true},
			// notes: what create/evolve did to tables before the batch; a
			// reseed's reason.
			{Name: "notes", Type: LedgerText, Null: true, Added: true},
		}, Indexes: []LedgerIndex{
			{"exactly_batches_range", []string{"pipeline", "topic", "partition", "from_offset"}}, // the chain, in order
			{"exactly_batches_status", []string{"pipeline", "status", "started_at"}},             // failed batches
			{"exactly_batches_recent", []string{"pipeline", "topic", "partition", "started_at"}}, // the last batch of each partition
		}},
		{Name: "exactly_dead_letters", Key: []string{"id"}, Columns: []LedgerColumn{
			{Name: "id", Type: LedgerSerial}, pipeline, batchID, topic, partition, {Name: "offset", Type: LedgerInt64},
			{Name: "record_key", Type: LedgerBytes, Null: true}, {Name: "record_value", Type: LedgerBytes, Null: true},
			{Name: "headers", Type: LedgerText, Null: true}, {Name: "error", Type: LedgerText},
			{Name: "created_at", Type: LedgerTime},
			// resolved_*: who redrove a dead letter, when, in which batch
			// (NULL while it is open).
			{Name: "resolved_at", Type: LedgerTime, Null: true, Added: true},
			{Name: "resolved_by", Type: LedgerText, Null: true, Added: true},
			{Name: "resolved_batch", Type: LedgerText, Null: true, Added: true},
		}, Indexes: []LedgerIndex{
			{"exactly_dead_letters_at", []string{"pipeline", "topic", "partition", "offset"}},
		}},
		{Name: "exactly_pipelines", Key: []string{"pipeline"}, Columns: []LedgerColumn{
			pipeline, {Name: "started_at", Type: LedgerTime},
			{Name: "start_from", Type: LedgerString, Size: nameSize}, writer,
			{Name: "notes", Type: LedgerText, Null: true},
		}},
	}
}

// ledgerMigration is an added ledger column, as ADD COLUMN writes it
// (Dialect.AddColumn, Dialect.ColumnType).
type ledgerMigration struct {
	table string
	col   ColumnDef
}

// ledgerMigrations returns the added ledger columns, in LedgerTables'
// order.
func ledgerMigrations() []ledgerMigration {
	var out []ledgerMigration
	for _, t := range LedgerTables() {
		for _, c := range t.Columns {
			if !c.Added {
				continue
			}
			typ := Type{Kind: KindText}
			switch c.Type {
			case LedgerTime:
				typ = Type{Kind: KindTimestampTZ, Precision: 6}
			case LedgerInt32:
				typ = Type{Kind: KindInt32}
			}
			out = append(out, ledgerMigration{t.Name, ColumnDef{Name: c.Name, Type: typ, Nullable: true}})
		}
	}
	return out
}
