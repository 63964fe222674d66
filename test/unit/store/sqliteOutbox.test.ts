import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { openDatabase } from '../../../src/store/store.js';
import { SqliteOutbox } from '../../../src/store/sqliteOutbox.js';
import { makeMessage } from '../../contract/outbox.suite.js';

// SqliteOutbox keeps the message objects it appended and serves `peek` from them (bench/outbox.bench.ts); the
// rows stay the truth. These cases would return a wrong or a dropped message if the cache drifted.
describe('SqliteOutbox peek cache', () => {
  let dir: string;
  let db: Database.Database;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-sqlite-outbox-'));
    db = openDatabase(join(dir, 'eddy.db'));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('peeks the same records as a fresh instance that must read and parse the rows', () => {
    const o = new SqliteOutbox(db);
    o.append(Array.from({ length: 5 }, (_, i) => makeMessage(i, { groupKey: `g${i % 2}` })));
    const cached = o.peek(10);
    const fromRows = new SqliteOutbox(db).peek(10);
    expect(cached).toEqual(fromRows);
    expect(cached.map((r) => r.message.id)).toEqual(['r1-g0-0', 'r1-g1-1', 'r1-g0-2', 'r1-g1-3', 'r1-g0-4']);
  });

  it('a rolled-back append leaves nothing behind: its seqs are handed out again to other messages', () => {
    const o = new SqliteOutbox(db);
    const bad = makeMessage(2);
    // JSON.stringify throws on a BigInt: the append transaction fails after the first insert.
    (bad.body as unknown as Record<string, unknown>).count = 1n;
    expect(() => o.append([makeMessage(1), bad])).toThrow(TypeError);
    expect(o.stats().pending).toBe(0);
    expect(o.peek(10)).toEqual([]);
    // The rolled-back seq is handed out again, here to another message.
    o.append([makeMessage(7)]);
    o.append([makeMessage(8)]);
    expect(o.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-7', 'r1-dev1-8']);
    expect(o.peek(10)).toEqual(new SqliteOutbox(db).peek(10));
  });

  it('serves peek without a query while every row is one it appended or has read, and queries for rows it has not read', () => {
    const o = new SqliteOutbox(db);
    o.append([makeMessage(1), makeMessage(2)]);
    o.remove([o.peek(1)[0]!.seq]);
    o.append([makeMessage(3)]);
    // A row that `o` did not append (as rows from before a restart): it must show up, so from the table.
    const other = new SqliteOutbox(db);
    other.append([makeMessage(4)]);
    expect(o.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-2', 'r1-dev1-3']); // o does not know
    const reopened = new SqliteOutbox(db);
    const queries = countPeekQueries(reopened);
    expect(reopened.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-2', 'r1-dev1-3', 'r1-dev1-4']);
    expect(queries()).toBe(1);
    // The rows that query read are in memory now: neither the append nor the next peek queries.
    reopened.append([makeMessage(5)]);
    reopened.remove(reopened.peek(3).map((r) => r.seq));
    expect(queries()).toBe(1);
    // Only its own record is left: no query any more, the same answers.
    expect(reopened.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-5']);
    expect(reopened.peek(10, reopened.peek(1)[0]!.seq)).toEqual([]);
    expect(reopened.peek(0)).toEqual([]);
    expect(queries()).toBe(1);
    expect(reopened.peek(10)).toEqual(new SqliteOutbox(db).peek(10));
  });

  it('never returns a removed or budget-dropped record', () => {
    const o = new SqliteOutbox(db);
    o.append(Array.from({ length: 6 }, (_, i) => makeMessage(i)));
    const [first, second] = o.peek(2);
    o.remove([first!.seq]);
    expect(o.peek(10).map((r) => r.seq)).not.toContain(first!.seq);
    // Keep room for about three records: the oldest summaries go.
    const drops = o.enforce(0, { maxBytes: 3 * second!.bytes + 1, ttlMs: 0 });
    expect(drops.budget.summary).toBe(2);
    const left = o.peek(10);
    expect(left).toHaveLength(3);
    expect(left).toEqual(new SqliteOutbox(db).peek(10));
  });

  it('pages through a backlog from memory exactly as from the rows, across removals and their compaction', () => {
    const o = new SqliteOutbox(db);
    const queries = countPeekQueries(o);
    o.append(Array.from({ length: 500 }, (_, i) => makeMessage(i, { groupKey: `g${i % 9}` })));
    const pages = (out: SqliteOutbox): number[][] => {
      const seen: number[][] = [];
      for (let after = 0, page = out.peek(32, after); page.length > 0; page = out.peek(32, after)) {
        seen.push(page.map((r) => r.seq));
        after = page[page.length - 1]!.seq;
      }
      return seen;
    };
    for (let round = 0; round < 6; round++) {
      // Remove every third record of the head and a few further back, as out-of-order PUBACKs do.
      const seqs = o.peek(120).map((r) => r.seq);
      o.remove(seqs.filter((_, i) => i % 3 === round % 3 || i > 100));
      o.append([makeMessage(1000 + round)]);
      expect(pages(o)).toEqual(pages(new SqliteOutbox(db)));
      expect(o.peek(5, seqs[50]!)).toEqual(new SqliteOutbox(db).peek(5, seqs[50]!));
    }
    expect(queries()).toBe(0);
  });

  it('reads the rows again after a reopen (nothing cached) and after more appends than the cache holds', () => {
    const o = new SqliteOutbox(db);
    const n = 8192 + 50;
    const all = Array.from({ length: n }, (_, i) => makeMessage(i, { groupKey: `g${i % 7}` }));
    for (let i = 0; i < n; i += 1000) o.append(all.slice(i, i + 1000));
    const tail = o.peek(100, n - 100);
    expect(tail.map((r) => r.message.id)).toEqual(all.slice(n - 100).map((m) => m.id));
    expect(tail).toEqual(new SqliteOutbox(db).peek(100, n - 100));
  });

  // A backlog larger than the cache, drained as the forwarder does (bench/endToEnd.ts --rules=mix100
  // builds one of 450,000 summaries): each row past the cache is read and parsed once, not on every
  // peek while it is at the head. The ids expected come from a plain list of what was appended and
  // removed, not from the outbox.
  it('drains a backlog larger than the cache in order, reading each row past the cache once', () => {
    const o = new SqliteOutbox(db);
    const n = 8192 + 3000;
    const msgs = Array.from({ length: n }, (_, i) => makeMessage(i, { groupKey: `g${i % 7}` }));
    for (let i = 0; i < n; i += 1000) o.append(msgs.slice(i, i + 1000));
    let model = msgs.map((m) => m.id);
    const queries = countPeekQueries(o);
    let peeks = 0;
    let appended = 0;
    while (model.length > 0) {
      const head = o.peek(64);
      const next = head.length === 0 ? [] : o.peek(64, head[head.length - 1]!.seq);
      peeks += 2;
      expect([...head, ...next].map((r) => r.message.id)).toEqual(model.slice(0, 128));
      // The same record object on the next peek: it was not read and parsed again.
      expect(o.peek(1)[0]).toBe(head[0]);
      expect(o.peek(1, head[0]!.seq)[0]).toBe(head[1] ?? next[0]);
      o.remove(head.slice(0, 48).map((r) => r.seq));
      model = model.slice(48);
      // New outputs keep arriving behind the backlog.
      if (peeks % 20 === 0 && appended < 200) {
        const more = Array.from({ length: 40 }, (_, i) => makeMessage(n + appended + i));
        o.append(more);
        appended += more.length;
        model.push(...more.map((m) => m.id));
      }
    }
    expect(o.stats().pending).toBe(0);
    expect(peeks).toBeGreaterThan(400);
    // 3,200 rows past the cache, read a page of at most 1,024 at a time as the head reaches them.
    expect(queries()).toBeLessThanOrEqual(10);
    o.append([makeMessage(n + 1000)]);
    expect(o.peek(10)).toEqual(new SqliteOutbox(db).peek(10));
  });
});

/** Counts the peek queries of `o` (its prepared `WHERE seq > ?` statement). */
function countPeekQueries(o: SqliteOutbox): () => number {
  const stmt = (o as unknown as { peekStmt: { all: (...a: unknown[]) => unknown } }).peekStmt;
  const all = stmt.all.bind(stmt);
  let n = 0;
  stmt.all = (...a: unknown[]) => {
    n++;
    return all(...a);
  };
  return () => n;
}

describe('SqliteOutbox write counters', () => {
  it('counts its commits by op and the rows they wrote, not ids appended before nor seqs already gone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eddy-sqlite-outbox-'));
    const db = openDatabase(join(dir, 'eddy.db'));
    try {
      const o = new SqliteOutbox(db);
      expect(o.writes()).toEqual({ commits: { append: 0, remove: 0 }, appended: 0, removed: 0 });
      o.append([makeMessage(1), makeMessage(2), makeMessage(3)]);
      o.append([makeMessage(3), makeMessage(4)]); // 3 was appended before: one row
      o.append([]); // no transaction
      const seqs = o.peek(10).map((r) => r.seq);
      o.remove(seqs.slice(0, 2));
      o.remove([seqs[0]!, seqs[2]!]); // the first is gone already: one row
      expect(o.writes()).toEqual({ commits: { append: 2, remove: 2 }, appended: 4, removed: 3 });
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// remove() deletes a run of consecutive seqs with one range delete (src/store/sqliteOutbox.ts `removeTx`):
// only the seqs listed may go, whatever the list holds, and the counts follow the rows that went.
describe('SqliteOutbox remove', () => {
  it('removes exactly the listed seqs (runs, single seqs, gaps, repeats, unknown and already removed seqs, any order), against a set', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eddy-sqlite-outbox-'));
    const db = openDatabase(join(dir, 'eddy.db'));
    try {
      const o = new SqliteOutbox(db);
      o.append(Array.from({ length: 300 }, (_, i) => makeMessage(i, { groupKey: `g${i % 7}` })));
      const all = o.peek(1000);
      const left = new Map(all.map((r) => [r.seq, r.bytes]));
      let seed = 7;
      const rnd = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
      for (let round = 0; round < 40; round++) {
        const list: number[] = [];
        while (list.length < 25) {
          const start = all[Math.floor(rnd() * all.length)]!.seq + (rnd() < 0.1 ? 1_000 : 0);
          const len = 1 + Math.floor(rnd() * 6);
          for (let k = 0; k < len; k++) list.push(start + k);
          if (rnd() < 0.2) list.push(start);
        }
        if (rnd() < 0.5) list.reverse();
        const before = o.writes().removed;
        let wantBytes = 0;
        let wantCount = 0;
        for (const s of new Set(list)) {
          const b = left.get(s);
          if (b === undefined) continue;
          wantBytes += b;
          wantCount++;
          left.delete(s);
        }
        const bytesBefore = o.stats().bytes;
        o.remove(list);
        expect(o.writes().removed - before).toBe(wantCount);
        expect(bytesBefore - o.stats().bytes).toBe(wantBytes);
        expect(o.stats().pending).toBe(left.size);
        expect(new SqliteOutbox(db).peek(1000).map((r) => r.seq)).toEqual([...left.keys()].sort((a, b) => a - b));
      }
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The ids appended before (migration 5): a log in append order plus a set in memory, instead of a
// table keyed by id. Message ids are UUID-shaped hashes, so that table took a random page per output.
describe('SqliteOutbox appended ids', () => {
  let dir: string;
  let db: Database.Database;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-sqlite-outbox-'));
    db = openDatabase(join(dir, 'eddy.db'));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const uuidLike = (n: number): string => {
    const h = createHash('sha256').update(`summary\nr1\n${n}`).digest('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  };
  const logIds = (): string[] => db.prepare<[], { id: string }>('SELECT id FROM emitted_log ORDER BY n').pluck().all() as unknown as string[];

  it('a process that did not close (SIGKILL) left its ids behind: the next one does not append them again', () => {
    const before = new SqliteOutbox(db);
    before.append([makeMessage(1), makeMessage(2)]);
    before.remove([before.peek(1)[0]!.seq]); // 1 was sent
    // A second connection, as the next process opens the file; the first one is never closed.
    const next = openDatabase(join(dir, 'eddy.db'));
    try {
      const after = new SqliteOutbox(next);
      after.append([makeMessage(1), makeMessage(2), makeMessage(3)]);
      expect(after.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-2', 'r1-dev1-3']);
    } finally {
      next.close();
    }
  });

  it('knows an id after a reopen as before it, non-ASCII included (a lone surrogate is kept as SQLite stores it, U+FFFD)', () => {
    const ids = ['ü-dev1-1', '\ud800-dev1-2', 'dev1-3-\u{1F600}'];
    const o = new SqliteOutbox(db);
    o.append(ids.map((id, i) => makeMessage(i, { id })));
    o.append([...ids, '\ud801-dev1-2'].map((id, i) => makeMessage(i, { id })));
    expect(o.peek(10).map((r) => r.message.id)).toEqual(ids);
    o.remove(o.peek(10).map((r) => r.seq));
    const again = new SqliteOutbox(db);
    again.append([...ids, '\ud801-dev1-2', 'ü-dev1-4'].map((id, i) => makeMessage(i, { id })));
    expect(again.peek(10).map((r) => r.message.id)).toEqual(['ü-dev1-4']);
  });

  it('knows each id\'s body after a reopen: a different body under a known id is a conflict, the same body a re-send; ids logged before the digests are not judged', () => {
    const o = new SqliteOutbox(db);
    o.append([makeMessage(1), makeMessage(2)]);
    // An id logged by an eddy before migration 6 has no digest.
    db.prepare("INSERT INTO emitted_log (id, at) VALUES ('old-id', 0)").run();
    const again = new SqliteOutbox(db);
    const changed = { ...makeMessage(1), body: { ...(makeMessage(1).body as object), revision: 3 } } as ReturnType<typeof makeMessage>;
    again.append([makeMessage(2), changed, makeMessage(9, { id: 'old-id' })]);
    expect(again.conflicts()).toEqual({ total: 1, recent: ['r1-dev1-1'] });
    expect(again.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-1', 'r1-dev1-2']);
    expect((again.peek(10)[0]!.message.body as { revision: number }).revision).toBe(0);
  });

  it('remembers at most emittedMax ids, the newest, in memory and in the log, also after a reopen', () => {
    const o = new SqliteOutbox(db, { emittedMax: 64 });
    for (let b = 0; b < 20; b++) o.append(Array.from({ length: 10 }, (_, i) => makeMessage(b * 10 + i)));
    expect(o.emittedIds()).toBeLessThanOrEqual(64 + 4); // cut in batches of 64 / 16
    expect(logIds()).toEqual(Array.from({ length: o.emittedIds() }, (_, i) => `r1-dev1-${200 - o.emittedIds() + i}`));
    o.remove(o.peek(1000).map((r) => r.seq));
    const again = new SqliteOutbox(db, { emittedMax: 64 });
    again.append([makeMessage(0), makeMessage(199)]); // the oldest was forgotten, the newest not
    expect(again.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-0']);
  });

  it('forgets ids older than pruneEmitted says, oldest first, in memory and in the log', () => {
    const o = new SqliteOutbox(db);
    o.append([1, 2, 3, 4].map((n) => makeMessage(n))); // createdAt 1,001,000 + ...
    o.pruneEmitted(1_003_000);
    expect(logIds()).toEqual(['r1-dev1-3', 'r1-dev1-4']);
    expect(o.emittedIds()).toBe(2);
    o.remove(o.peek(10).map((r) => r.seq));
    o.append([1, 2, 3, 4].map((n) => makeMessage(n)));
    expect(o.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-1', 'r1-dev1-2']);
  });

  it('an alert costs two WAL pages to append (its row, the id log\'s end) and one to remove, with summaries and alerts pending (migration 7)', () => {
    db.pragma('wal_autocheckpoint = 0');
    const o = new SqliteOutbox(db);
    // A backlog of both kinds, as after an outage: summaries interleaved with alerts.
    for (let b = 0; b < 5; b++) o.append(Array.from({ length: 1000 }, (_, i) => makeMessage(b * 1000 + i, { id: uuidLike(b * 1000 + i), kind: i % 10 === 0 ? 'alert' : 'summary' })));
    db.pragma('wal_checkpoint(TRUNCATE)');
    // A WAL frame is a 24-byte header and a page; the file starts with a 32-byte header.
    const frames = (): number => Math.max(0, (statSync(join(dir, 'eddy.db-wal')).size - 32) / (4096 + 24));
    o.append([makeMessage(9_000, { id: uuidLike(9_000), kind: 'alert' })]);
    // Schema 6 wrote 4: the row, its (kind, seq) index entry, sqlite_sequence, the id log.
    expect(frames()).toBe(2);
    db.pragma('wal_checkpoint(TRUNCATE)');
    o.remove([o.lastSeq()]);
    // Schema 6 wrote 2: the row and its index entry.
    expect(frames()).toBe(1);
  });

  it('an append of 15 outputs writes a few WAL pages, not one per id, with 20,000 ids remembered', () => {
    db.pragma('wal_autocheckpoint = 0');
    const o = new SqliteOutbox(db);
    for (let b = 0; b < 20; b++) o.append(Array.from({ length: 1000 }, (_, i) => makeMessage(b * 1000 + i, { id: uuidLike(b * 1000 + i) })));
    o.remove(o.peek(100_000).map((r) => r.seq));
    db.pragma('wal_checkpoint(TRUNCATE)');
    o.append(Array.from({ length: 15 }, (_, i) => makeMessage(30_000 + i, { id: uuidLike(30_000 + i) })));
    // A WAL frame is a 24-byte header and a page; the file starts with a 32-byte header.
    const frames = (statSync(join(dir, 'eddy.db-wal')).size - 32) / (4096 + 24);
    // 10 here: outbox rows, their kind index, the log's end, sqlite_sequence, the freelist; the
    // id-keyed table of migration 3 made it 30, a page per id on top.
    expect(frames).toBeLessThanOrEqual(12);
  });
});
