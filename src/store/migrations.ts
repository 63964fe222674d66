import type Database from 'better-sqlite3';

/**
 * Numbered schema migrations; `PRAGMA user_version` holds the number of the last one applied
 * Append new ones; never edit a released one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the outbox. AUTOINCREMENT so a seq is never reused after the table empties: the forwarder
  // pages with `seq > afterSeq`, and a reused seq would hide a new record behind its cursor.
  `CREATE TABLE outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     kind TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     bytes INTEGER NOT NULL,
     message TEXT NOT NULL
   );
   CREATE INDEX outbox_kind_seq ON outbox (kind, seq);`,
  // 2: engine state checkpoints (one JSON blob per rule) and the input-log position they reflect.
  `CREATE TABLE rule_state (rule_key TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
   INSERT INTO meta (key, value) VALUES ('checkpoint_seq', 0);`,
  // 3: ids of outputs already appended (kept a day). After a crash, replaying the input log re-creates
  // outputs that were appended (and maybe sent) before it; appending them again would send an old
  // window after newer ones of its group. Same id = same window and revision (docs/contract.md section 4).
  `CREATE TABLE emitted (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX emitted_at ON emitted (at);`,
  // 4: the input-log position of each state row, for checkpoints written one rule per event-loop turn
  // (input → alert latency, docs/performance.md). NULL: the row reflects exactly meta.checkpoint_seq, as every row before did.
  `ALTER TABLE rule_state ADD COLUMN upto_seq INTEGER;`,
  // 5: the appended ids as a log in append order, no index (docs/performance.md, "Durability cost"). Message ids are
  // UUID-shaped hashes (docs/contract.md section 4), so every insert into 3's id-keyed table landed on a
  // random page: an append of 8-15 outputs wrote 20-35 WAL pages, three times what the outbox rows
  // took. SqliteOutbox now checks ids against a set in memory, loaded from this log at open, and the
  // log is only ever appended at its end and cut at its start. The newest 100,000 ids of 3 are kept
  // (SqliteOutbox's bound, and MemoryOutbox's).
  `CREATE TABLE emitted_log (n INTEGER PRIMARY KEY, id TEXT NOT NULL, at INTEGER NOT NULL);
   INSERT INTO emitted_log (id, at) SELECT id, at FROM (SELECT id, at FROM emitted ORDER BY at DESC, id LIMIT 100000) ORDER BY at, id;
   DROP TABLE emitted;`,
  // 6: a digest of each appended id's body (NULL for ids logged before): an append of a known id with
  // another body is a conflict the outbox counts (docs/contract.md section 5), not a re-send to skip.
  `ALTER TABLE emitted_log ADD COLUMN digest TEXT;`,
  // 7: the outbox without AUTOINCREMENT and without the (kind, seq) index, for the per-alert commit
  // (docs/performance.md, "Input → alert latency"): appending one alert wrote four pages (the row, its
  // index entry, sqlite_sequence, the id log's end) and removing it two. SqliteOutbox hands out seqs
  // itself, from a counter that starts above the table's largest seq at open, so a seq is still never
  // reused while a process runs (nothing keeps one across a restart). Only summaries are indexed, by
  // seq (a partial index): dropping the oldest summaries over budget stays a walk over the dropped
  // ones however many alerts precede them, and alerts are dropped only once no summary is left.
  `CREATE TABLE outbox_v7 (
     seq INTEGER PRIMARY KEY,
     kind TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     bytes INTEGER NOT NULL,
     message TEXT NOT NULL
   );
   INSERT INTO outbox_v7 (seq, kind, created_at, bytes, message) SELECT seq, kind, created_at, bytes, message FROM outbox ORDER BY seq;
   DROP TABLE outbox;
   ALTER TABLE outbox_v7 RENAME TO outbox;
   CREATE INDEX outbox_summary_seq ON outbox (seq) WHERE kind = 'summary';`,
];

/** Applies the migrations the database lacks, each in its own transaction. Returns [from, to]. */
export function migrate(db: Database.Database, migrations: readonly string[] = MIGRATIONS): [number, number] {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > migrations.length) {
    throw new Error(`database schema version ${from} is newer than this eddy (${migrations.length})`);
  }
  for (let v = from; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      // user_version cannot be bound as a parameter; v is our own integer.
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return [from, migrations.length];
}
