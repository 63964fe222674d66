import type Database from 'better-sqlite3';

/**
 * A migration a build older than it can still read and write the result of: `readableFrom` is the
 * smallest number of migrations a build must know to use the database once this one is applied (at most
 * the migration's own number). Give it only to a migration that older builds' statements keep working
 * against and cannot break: a column added with a default or NULL they can leave out, a new table or
 * index they never touch. Anything else is a plain string: builds before it may not open the result.
 */
export interface CompatibleMigration {
  readonly sql: string;
  readonly readableFrom: number;
}

/**
 * Numbered schema migrations; `PRAGMA user_version` holds the number of the last one applied
 * Append new ones; never edit a released one.
 *
 * Rolling back (docs/deploy.md, "Updating and rolling back"): `meta.readable_from` holds the smallest
 * number of migrations a build must know to read and write the database (the largest `readableFrom` of
 * the migrations applied; a plain string counts as its own number). A build that knows fewer migrations
 * than the database has applied opens it as it is when it knows at least that many, and otherwise
 * refuses it (openStore then moves it aside), as every build did before `readable_from` existed.
 */
export const MIGRATIONS: readonly (string | CompatibleMigration)[] = [
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

/** The key in `meta` (migration 2) of the smallest number of migrations a build must know to use the database. */
export const READABLE_FROM_KEY = 'readable_from';

/** The smallest number of migrations a build must know to use a database with the first `n` of `migrations` applied. */
export function readableFrom(migrations: readonly (string | CompatibleMigration)[], n: number): number {
  let floor = 0;
  for (let v = 0; v < n; v++) {
    const m = migrations[v]!;
    const own = v + 1;
    // A floor above the migration's own number would lock out the very build that applied it.
    const f = typeof m === 'string' ? own : Math.min(own, Math.max(0, Math.floor(m.readableFrom)));
    if (f > floor) floor = f;
  }
  return floor;
}

/**
 * Applies the migrations the database lacks, each in its own transaction, and records the database's
 * `readable_from` with the last one. Returns [from, to]: `to` is `from` when the database was written
 * by a newer build whose schema this one can use as it is. Throws when the database's schema is newer
 * and not readable by this build (test/unit/store/migrations.test.ts).
 */
export function migrate(db: Database.Database, migrations: readonly (string | CompatibleMigration)[] = MIGRATIONS): [number, number] {
  const from = db.pragma('user_version', { simple: true }) as number;
  const known = migrations.length;
  if (from > known) {
    const floor = storedFloor(db);
    // No floor recorded: written by a build from before `readable_from` existed, which never promised one.
    if (floor === null || floor > known) {
      const need = floor === null ? 'its own version' : String(floor);
      throw new Error(`database schema version ${from} is newer than this eddy (${known}) and needs a build that knows ${need} migrations`);
    }
    return [from, from];
  }
  for (let v = from; v < known; v++) {
    const m = migrations[v]!;
    db.transaction(() => {
      db.exec(typeof m === 'string' ? m : m.sql);
      // user_version cannot be bound as a parameter; v is our own integer.
      db.pragma(`user_version = ${v + 1}`);
      if (v + 1 === known) writeFloor(db, readableFrom(migrations, known));
    })();
  }
  // A database migrated by a build from before `readable_from` existed gets its floor now.
  if (from === known && known >= 2 && storedFloor(db) === null) writeFloor(db, readableFrom(migrations, known));
  return [from, known];
}

function hasMeta(db: Database.Database): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'`).get() !== undefined;
}

function storedFloor(db: Database.Database): number | null {
  if (!hasMeta(db)) return null;
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(READABLE_FROM_KEY) as { value: unknown } | undefined;
  return row !== undefined && typeof row.value === 'number' && Number.isInteger(row.value) ? row.value : null;
}

function writeFloor(db: Database.Database, floor: number): void {
  if (!hasMeta(db)) return;
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(READABLE_FROM_KEY, floor);
}
