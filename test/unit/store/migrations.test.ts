import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore, type StoreOptions } from '../../../src/store/store.js';
import { MIGRATIONS, READABLE_FROM_KEY, migrate, type CompatibleMigration } from '../../../src/store/migrations.js';
import { makeMessage } from '../../contract/outbox.suite.js';

/*
 * Rolling back onto a database a later build migrated (docs/deploy.md, "Updating and rolling back"):
 * the later builds here are this build's migrations plus one, applied by `migrate` the way such a build
 * would, and their writes are plain SQL against the schema they leave.
 */
const logged: { level: string; msg: string }[] = [];
const log = {
  info: (_o: object, msg: string) => void logged.push({ level: 'info', msg }),
  warn: (_o: object, msg: string) => void logged.push({ level: 'warn', msg }),
  error: (_o: object, msg: string) => void logged.push({ level: 'error', msg }),
};

/** A later build's migration that this build's statements keep working against: a column they can leave NULL. */
const ADDITIVE: CompatibleMigration = { sql: 'ALTER TABLE outbox ADD COLUMN priority INTEGER;', readableFrom: MIGRATIONS.length };
/** A later build's migration this build must not write through: its statements would break the new rule. */
const BREAKING = 'CREATE TABLE outbox_routes (seq INTEGER PRIMARY KEY, route TEXT NOT NULL);';

describe('schema migrations across a rollback', () => {
  let dir: string;
  const now = Date.UTC(2026, 11, 7, 12, 0, 0);
  const opts = (): StoreOptions => ({ log, clock: { now: () => now }, ttlMs: 0 });
  const floorOf = (db: Database.Database): unknown => db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(READABLE_FROM_KEY);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-migrations-'));
    logged.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('records the smallest build a database needs: the newest plain migration, or a compatible one\'s floor', () => {
    const db = new Database(':memory:');
    migrate(db);
    expect(floorOf(db)).toBe(MIGRATIONS.length);
    migrate(db, [...MIGRATIONS, ADDITIVE]);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length + 1);
    expect(floorOf(db)).toBe(MIGRATIONS.length);
    // A floor above the migration's own number is clamped: it would lock out the build that applied it.
    const d2 = new Database(':memory:');
    migrate(d2, [...MIGRATIONS, { sql: 'SELECT 1;', readableFrom: 99 }]);
    expect(floorOf(d2)).toBe(MIGRATIONS.length + 1);
    // A plain migration after a compatible one raises the floor to its own number.
    migrate(db, [...MIGRATIONS, ADDITIVE, BREAKING]);
    expect(floorOf(db)).toBe(MIGRATIONS.length + 2);
  });

  it('a database migrated before the floor existed gets it at the next open', () => {
    const db = new Database(':memory:');
    migrate(db);
    db.prepare('DELETE FROM meta WHERE key = ?').run(READABLE_FROM_KEY);
    expect(migrate(db)).toEqual([MIGRATIONS.length, MIGRATIONS.length]);
    expect(floorOf(db)).toBe(MIGRATIONS.length);
  });

  it('opens a database a later build migrated compatibly as it is: its outbox and checkpoint are kept, and both builds read what the other wrote', () => {
    // The later build: migrates, writes an output with its new column, a checkpoint, and stops.
    const later = new Database(join(dir, 'eddy.db'));
    later.pragma('journal_mode = WAL');
    migrate(later, [...MIGRATIONS, ADDITIVE]);
    const m1 = makeMessage(1, { createdAt: now });
    later.prepare('INSERT INTO outbox (seq, kind, created_at, bytes, message, priority) VALUES (1, ?, ?, ?, ?, 5)').run(m1.kind, m1.createdAt, 10, JSON.stringify(m1));
    later.prepare("UPDATE meta SET value = 42 WHERE key = 'checkpoint_seq'").run();
    later.prepare('INSERT INTO rule_state (rule_key, state, upto_seq) VALUES (?, ?, NULL)').run('r1', '{"w":1}');
    later.close();

    // This build, rolled back onto it.
    const s = openStore(dir, opts());
    expect(s.damage).toBeNull();
    expect(existsSync(join(dir, 'eddy.db'))).toBe(true);
    expect(logged.some((l) => l.level === 'warn' && l.msg.includes('newer eddy'))).toBe(true);
    expect(s.outbox.peek(10).map((r) => r.message)).toEqual([m1]);
    expect(s.loadCheckpoint().uptoInputSeq).toBe(42);
    expect(s.loadCheckpoint().states.get('r1')).toBe('{"w":1}');
    const m2 = makeMessage(2, { createdAt: now });
    s.outbox.append([m2]);
    s.saveCheckpoint(new Map([['r1', '{"w":2}']]), 43);
    s.close();

    // The later build again: its schema untouched, this build's rows there.
    const again = new Database(join(dir, 'eddy.db'));
    expect(migrate(again, [...MIGRATIONS, ADDITIVE])).toEqual([MIGRATIONS.length + 1, MIGRATIONS.length + 1]);
    expect(again.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length + 1);
    const rows = again.prepare('SELECT message, priority FROM outbox ORDER BY seq').all() as { message: string; priority: number | null }[];
    expect(rows.map((r) => [(JSON.parse(r.message) as { id: string }).id, r.priority])).toEqual([
      [m1.id, 5],
      [m2.id, null],
    ]);
    expect(again.prepare("SELECT value FROM meta WHERE key = 'checkpoint_seq'").pluck().get()).toBe(43);
    again.close();
  });

  it('refuses a database a later build migrated past what this one can use, and one from a later build that recorded no floor: moved aside, reported', () => {
    for (const [name, prepare] of [
      ['past the floor', (db: Database.Database) => migrate(db, [...MIGRATIONS, ADDITIVE, BREAKING])],
      ['no floor', (db: Database.Database) => {
        migrate(db, [...MIGRATIONS, ADDITIVE]);
        db.prepare('DELETE FROM meta WHERE key = ?').run(READABLE_FROM_KEY);
      }],
    ] as const) {
      const d = mkdtempSync(join(dir, 'rollback-'));
      const later = new Database(join(d, 'eddy.db'));
      prepare(later);
      later.close();
      logged.length = 0;
      const s = openStore(d, opts());
      expect(s.damage, name).not.toBeNull();
      expect(s.damage!.error, name).toMatch(/newer than this eddy/);
      expect(existsSync(s.damage!.movedTo), name).toBe(true);
      expect(logged.some((l) => l.level === 'error' && l.msg.includes('moved aside')), name).toBe(true);
      s.close();
    }
  });
});
