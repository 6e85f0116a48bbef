// Package chaos holds the chaos suite: it runs the real exactly binary as
// child processes against an in-process kfake broker and a real sink
// (PostgreSQL, or SQL Server — Babelfish in CI — through a fault-injecting
// TCP proxy that reads each wire protocol, or SQLite), produces a
// checkable workload with plain and transactional producers, and injects
// faults at random moments: SIGKILL and restart, terminated database
// sessions, connections cut right after a COMMIT was forwarded, database
// outages, broker errors and leader moves, consumer-group rebalances and
// paused zombies. Afterwards it checks the real tables and the ledger and
// names what it finds the Jepsen way: duplicate, lost, aborted read, skip,
// unseen.
//
// The rule of this package: a run passes only when every key holds exactly
// its expected final row, every appended record is there exactly once, and
// every committed ledger row covers exactly the Kafka records of its range.
// The seed of each run is logged; EXACTLY_CHAOS_SEED replays it.
package chaos
