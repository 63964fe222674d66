import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openStore, type StoreOptions } from '../../../src/store/store.js';
import { MIGRATIONS, migrate } from '../../../src/store/migrations.js';
import { makeMessage } from '../../contract/outbox.suite.js';

const logged: { level: string; msg: string }[] = [];
const log = {
  info: (_o: object, msg: string) => void logged.push({ level: 'info', msg }),
  warn: (_o: object, msg: string) => void logged.push({ level: 'warn', msg }),
  error: (_o: object, msg: string) => void logged.push({ level: 'error', msg }),
};

describe('openStore', () => {
  let dir: string;
  let now: number;
  // ttlMs 0 unless a test sets it: makeMessage's createdAt is in 1970, which a 168 h TTL would expire.
  const opts = (over: Partial<StoreOptions> = {}): StoreOptions => ({ log, clock: { now: () => now }, ttlMs: 0, ...over });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-store-'));
    now = Date.UTC(2026, 10, 26, 3, 0, 0);
    logged.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('uses WAL and synchronous=NORMAL, and keeps the outbox across a reopen', () => {
    const s = openStore(dir, opts());
    s.outbox.append([makeMessage(1), makeMessage(2)]);
    s.close();
    const db = new Database(join(dir, 'eddy.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    db.close();
    const s2 = openStore(dir, opts());
    expect(s2.outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-1', 'r1-dev1-2']);
    expect(s2.damage).toBeNull();
    s2.close();
  });

  it('migrates a version-1 database and keeps its rows', () => {
    const db = new Database(join(dir, 'eddy.db'));
    migrate(db, MIGRATIONS.slice(0, 1));
    db.pragma('user_version = 1');
    const m = makeMessage(7);
    db.prepare('INSERT INTO outbox (kind, created_at, bytes, message) VALUES (?, ?, ?, ?)').run(m.kind, m.createdAt, 10, JSON.stringify(m));
    db.close();
    const s = openStore(dir, opts());
    expect(s.outbox.peek(10).map((r) => r.message)).toEqual([m]);
    expect(s.loadCheckpoint()).toEqual({ states: new Map(), uptoInputSeq: 0, aheadTo: new Map() });
    s.saveCheckpoint(new Map([['a', '{}']]), 3);
    s.close();
    const check = new Database(join(dir, 'eddy.db'));
    expect(check.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    check.close();
  });

  it('migrates a version-4 database: keeps its outbox, its checkpoint and the newest 100,000 ids appended before', () => {
    const db = new Database(join(dir, 'eddy.db'));
    migrate(db, MIGRATIONS.slice(0, 4));
    const at = (n: number): number => now - 200_000 + n;
    const m = (n: number) => makeMessage(n, { createdAt: at(n) });
    db.prepare('INSERT INTO outbox (kind, created_at, bytes, message) VALUES (?, ?, ?, ?)').run('summary', at(100_003), 10, JSON.stringify(m(100_003)));
    // Ids 1..100,003 were appended; all but the last were sent and removed since. Inserted newest first: the order is `at`'s.
    const put = db.prepare('INSERT INTO emitted (id, at) VALUES (?, ?)');
    db.transaction(() => {
      for (let n = 100_003; n >= 1; n--) put.run(`r1-dev1-${n}`, at(n));
    })();
    db.prepare("UPDATE meta SET value = 5 WHERE key = 'checkpoint_seq'").run();
    db.prepare('INSERT INTO rule_state (rule_key, state, upto_seq) VALUES (?, ?, NULL)').run('r1', '{"w":1}');
    db.close();

    const s = openStore(dir, opts());
    expect(s.outbox.peek(10).map((r) => r.message)).toEqual([m(100_003)]);
    expect(s.loadCheckpoint()).toEqual({ states: new Map([['r1', '{"w":1}']]), uptoInputSeq: 5, aheadTo: new Map() });
    // 1..3 are past the bound and forgotten; 4 and 100,002 (sent) and 100,003 (pending) are remembered.
    s.outbox.append([1, 3, 4, 100_002, 100_003, 100_004].map(m));
    expect(s.outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-100003', 'r1-dev1-1', 'r1-dev1-3', 'r1-dev1-100004']);
    s.close();

    const check = new Database(join(dir, 'eddy.db'));
    expect(check.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(check.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'emitted'").pluck().get()).toBe(0);
    const ids = check.prepare('SELECT id FROM emitted_log ORDER BY n').pluck().all() as string[];
    expect(ids.slice(0, 2)).toEqual(['r1-dev1-4', 'r1-dev1-5']);
    expect(ids.slice(-4)).toEqual(['r1-dev1-100003', 'r1-dev1-1', 'r1-dev1-3', 'r1-dev1-100004']);
    check.close();
  });

  it('migrates a database the schema-6 build wrote (fixtures/eddy-schema6.db): every pending record with its seq, the checkpoint and the id log kept; no kind index, no AUTOINCREMENT', () => {
    // Written by the build before migration 7 through its own openStore: 12 appends of one output each
    // (seqs 1-12, every third an alert `v6-alert-<i>`, the others `v6-summary-<i>`, body bytes growing
    // with i), seqs 1, 2, 11 and 12 sent and removed (sqlite_sequence at 12), a checkpoint of rule
    // machine1m at input seq 42.
    copyFileSync(fileURLToPath(new URL('./fixtures/eddy-schema6.db', import.meta.url)), join(dir, 'eddy.db'));
    const s = openStore(dir, opts());
    const kept = [3, 4, 5, 6, 7, 8, 9, 10];
    const idOf = (i: number): string => `v6-${i % 3 === 0 ? 'alert' : 'summary'}-${i}`;
    expect(s.outbox.peek(100).map((r) => [r.seq, r.message.id, r.message.kind])).toEqual(kept.map((i) => [i, idOf(i), i % 3 === 0 ? 'alert' : 'summary']));
    expect(s.loadCheckpoint()).toEqual({ states: new Map([['machine1m', '{"w":1}']]), uptoInputSeq: 42, aheadTo: new Map() });
    // The id log came along: an id appended before (sent or not) is not appended again.
    const again = s.outbox.peek(100).find((r) => r.seq === 4)!.message;
    s.outbox.append([again, { ...again, id: 'v6-summary-1' }, { ...again, id: 'new-1' }]);
    const after = s.outbox.peek(100);
    expect(after.map((r) => r.message.id)).toEqual([...kept.map(idOf), 'new-1']);
    expect(after.at(-1)!.seq).toBeGreaterThan(10);
    // Over budget: the oldest summaries go first, alerts stay (docs/contract.md section 8).
    const bytes = (ids: number[]): number => after.filter((r) => ids.includes(r.seq)).reduce((a, r) => a + r.bytes, 0);
    s.setLimits({ maxBytes: s.stats().bytes - bytes([4]) - 1, ttlMs: 0 });
    expect(s.outbox.peek(100).map((r) => r.message.id)).toEqual([3, 6, 7, 8, 9, 10].map(idOf).concat('new-1'));
    expect(s.stats().drops.budget).toEqual({ summary: 2, alert: 0 });
    s.close();

    const check = new Database(join(dir, 'eddy.db'));
    expect(check.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(check.pragma('quick_check', { simple: true })).toBe('ok');
    const names = check.prepare("SELECT name FROM sqlite_master WHERE tbl_name = 'outbox'").pluck().all();
    expect(names.sort()).toEqual(['outbox', 'outbox_summary_seq']);
    expect(check.prepare("SELECT sql FROM sqlite_master WHERE name = 'outbox'").pluck().get()).not.toMatch(/AUTOINCREMENT/i);
    check.close();
  });

  it('moves a garbage eddy.db aside, starts fresh, and reports it', () => {
    writeFileSync(join(dir, 'eddy.db'), Buffer.alloc(8192, 'garbage!'));
    const s = openStore(dir, opts());
    expect(s.damage).not.toBeNull();
    expect(s.damage!.movedTo).toBe(join(dir, 'eddy.db.corrupt-2026-11-26T03-00-00-000Z'));
    expect(s.damage!.error).toMatch(/SQLITE_NOTADB/);
    expect(readFileSync(s.damage!.movedTo).subarray(0, 8).toString()).toBe('garbage!');
    expect(s.stats().damage).toEqual(s.damage);
    expect(logged.some((l) => l.level === 'error' && l.msg.includes('moved aside'))).toBe(true);
    s.outbox.append([makeMessage(1)]);
    expect(s.stats().pending).toBe(1);
    s.close();
  });

  it('moves aside a database with damaged pages (quick_check)', () => {
    const s = openStore(dir, opts());
    for (let i = 0; i < 40; i++) s.outbox.append(Array.from({ length: 50 }, (_, k) => makeMessage(i * 50 + k)));
    s.close();
    const file = join(dir, 'eddy.db');
    expect(existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0).toBe(0); // close checkpoints the WAL
    // Overwrite pages 3.. with noise, keeping the header page intact.
    const fd = openSync(file, 'r+');
    const noise = Buffer.alloc(4096 * 8);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919) & 0xff;
    writeSync(fd, noise, 0, noise.length, 4096 * 2);
    closeSync(fd);
    const s2 = openStore(dir, opts());
    expect(s2.damage).not.toBeNull();
    expect(s2.stats().pending).toBe(0);
    expect(readdirSync(dir).some((f) => f.startsWith('eddy.db.corrupt-'))).toBe(true);
    s2.close();
  });

  it('saves and loads a checkpoint, replacing the whole set, and truncates the input log', () => {
    const s = openStore(dir, opts());
    const input = (i: number) => ({ input: 'telemetry', deviceId: 'dev1', moduleId: 'sim', arrival: i, body: Buffer.from(String(i)) });
    for (let i = 1; i <= 10; i++) expect(s.appendInput(input(i))).toBe(i);
    expect(s.saveCheckpoint(new Map([['r1', '{"a":1}'], ['r2', '{"b":2}']]), 6)).toBe(true);
    expect([...s.readInputsAfter(s.loadCheckpoint().uptoInputSeq)].map((r) => r.seq)).toEqual([7, 8, 9, 10]);
    expect(s.saveCheckpoint(new Map([['r2', '{"b":3}']]), 10)).toBe(true);
    s.close();
    const s2 = openStore(dir, opts());
    expect(s2.loadCheckpoint()).toEqual({ states: new Map([['r2', '{"b":3}']]), uptoInputSeq: 10, aheadTo: new Map() });
    expect([...s2.readInputsAfter(0)]).toEqual([]);
    expect(readdirSync(join(dir, 'inputs'))).toHaveLength(1);
    expect(s2.appendInput(input(11))).toBe(11);
    s2.close();
  });

  it('saves a checkpoint in steps: each row with its own seq, the truncation point only at the commit', () => {
    const s = openStore(dir, opts());
    const input = (i: number) => ({ input: 'telemetry', deviceId: 'dev1', moduleId: 'sim', arrival: i, body: Buffer.from(String(i)) });
    for (let i = 1; i <= 10; i++) s.appendInput(input(i));
    expect(s.saveCheckpoint(new Map([['r1', '{"a":1}'], ['gone', '{}'], ['$x', '"old"']]), 4)).toBe(true);
    expect(s.saveState('r1', '{"a":2}', 7)).toBe(true);
    expect(s.saveState('r2', '{"b":2}', 9)).toBe(true);
    // A rule removed since (src/app/eddyApp.ts: with the outputs its removal emitted).
    expect(s.deleteState('gone')).toBe(true);
    // A crash here: the old truncation point stays, the rows saved since are ahead of it.
    s.close();
    const s2 = openStore(dir, opts());
    expect(s2.loadCheckpoint()).toEqual({
      states: new Map([['r1', '{"a":2}'], ['$x', '"old"'], ['r2', '{"b":2}']]),
      uptoInputSeq: 4,
      aheadTo: new Map([['r1', 7], ['r2', 9]]),
    });
    expect([...s2.readInputsAfter(4)].map((r) => r.seq)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(s2.commitCheckpoint(new Map([['$x', '"new"']]), new Set(['r1', 'r2']), 6)).toBe(true);
    expect(s2.loadCheckpoint()).toEqual({
      states: new Map([['r1', '{"a":2}'], ['$x', '"new"'], ['r2', '{"b":2}']]),
      uptoInputSeq: 6,
      aheadTo: new Map([['r1', 7], ['r2', 9]]),
    });
    expect([...s2.readInputsAfter(6)].map((r) => r.seq)).toEqual([7, 8, 9, 10]);
    // A whole checkpoint puts every row back at its own seq.
    expect(s2.saveCheckpoint(new Map([['r1', '{"a":3}']]), 10)).toBe(true);
    expect(s2.loadCheckpoint().aheadTo).toEqual(new Map());
    s2.close();
  });

  it('keeps seqs above a state saved ahead of the checkpoint when the input log files are gone', () => {
    const s = openStore(dir, opts());
    for (let i = 1; i <= 8; i++) s.appendInput({ input: 'i', deviceId: 'd', moduleId: 'm', arrival: i, body: Buffer.alloc(1) });
    s.saveCheckpoint(new Map(), 3);
    s.saveState('r1', '{}', 8);
    s.close();
    rmSync(join(dir, 'inputs'), { recursive: true });
    const s2 = openStore(dir, opts());
    expect(s2.appendInput({ input: 'i', deviceId: 'd', moduleId: 'm', arrival: 9, body: Buffer.alloc(1) })).toBe(9);
    s2.close();
  });

  it('keeps seqs above the checkpoint when the input log files are gone', () => {
    const s = openStore(dir, opts());
    for (let i = 1; i <= 5; i++) s.appendInput({ input: 'i', deviceId: 'd', moduleId: 'm', arrival: i, body: Buffer.alloc(1) });
    s.saveCheckpoint(new Map(), 5);
    s.close();
    rmSync(join(dir, 'inputs'), { recursive: true });
    const s2 = openStore(dir, opts());
    expect(s2.appendInput({ input: 'i', deviceId: 'd', moduleId: 'm', arrival: 6, body: Buffer.alloc(1) })).toBe(6);
    s2.close();
  });

  it('keeps the budget on append, dropping old summaries before alerts, and counts drops', () => {
    const one = Buffer.byteLength(JSON.stringify(makeMessage(100)));
    const s = openStore(dir, opts({ maxBytes: one * 5 }));
    s.outbox.append([makeMessage(100, { kind: 'alert' })]);
    for (let i = 101; i < 110; i++) s.outbox.append([makeMessage(i)]);
    const st = s.stats();
    expect(st.bytes).toBeLessThanOrEqual(one * 5);
    expect(st.drops.budget.alert).toBe(0);
    expect(st.drops.budget.summary).toBe(10 - st.pending);
    const ids = s.outbox.peek(10).map((r) => r.message.id);
    expect(ids[0]).toBe('r1-dev1-100'); // the alert, oldest of all, survives
    expect(ids.at(-1)).toBe('r1-dev1-109');
    s.close();
  });

  it('expires by TTL on the periodic check and counts by kind', () => {
    const s = openStore(dir, opts({ ttlMs: 60_000, ttlCheckMs: 10_000 }));
    s.outbox.append([makeMessage(1, { createdAt: now }), makeMessage(2, { kind: 'alert', createdAt: now + 1 }), makeMessage(3, { createdAt: now + 30_000 })]);
    now += 60_500;
    expect(s.outbox.peek(10)).toHaveLength(1); // the peek ran the check
    expect(s.stats().drops.ttl).toEqual({ summary: 1, alert: 1 });
    expect(s.stats().oldest).toBe(new Date(now - 60_500 + 30_000).toISOString());
    s.close();
  });

  it('on SQLITE_FULL degrades to memory without losing a record, then recovers to disk', () => {
    // max_page_count makes the database fill up for real: SQLite answers SQLITE_FULL.
    const s = openStore(dir, opts({ maxPageCount: 40, retryMs: 5_000 }));
    let n = 0;
    while (!s.degraded && n < 10_000) s.outbox.append([makeMessage(++n)]);
    expect(s.degraded).not.toBeNull();
    expect(s.degraded!.error).toMatch(/SQLITE_FULL/);
    expect(s.degraded!.since).toBe(new Date(now).toISOString());
    expect(s.stats().degraded).toEqual(s.degraded);
    // Keeps working in memory: nothing lost, order kept.
    for (let k = 0; k < 20; k++) s.outbox.append([makeMessage(++n)]);
    const all = s.outbox.peek(100_000);
    expect(all.map((r) => r.message.id)).toEqual(Array.from({ length: n }, (_, i) => `r1-dev1-${i + 1}`));
    expect(s.stats().pending).toBe(n);
    // Still full: a retry fails and it stays degraded.
    expect(s.retryDisk()).toBe(false);
    // The forwarder drains most of it; at the next periodic retry it fits again.
    s.outbox.remove(all.slice(0, n - 10).map((r) => r.seq));
    now += 5_000;
    s.outbox.append([makeMessage(++n)]);
    expect(s.degraded).toBeNull();
    expect(logged.some((l) => l.msg.includes('recovered'))).toBe(true);
    const left = s.outbox.peek(100).map((r) => r.message.id);
    expect(left).toEqual(Array.from({ length: 11 }, (_, i) => `r1-dev1-${n - 10 + i}`));
    s.close();
    // And it really is on disk.
    const s2 = openStore(dir, opts());
    expect(s2.outbox.peek(100).map((r) => r.message.id)).toEqual(left);
    s2.outbox.append([makeMessage(++n)]);
    expect(s2.outbox.peek(100).at(-1)!.seq).toBeGreaterThan(Math.max(...all.map((r) => r.seq)));
    s2.close();
  });

  it('a checkpoint refused by a full disk returns false, keeps the input log, and reports degraded', () => {
    const s = openStore(dir, opts({ maxPageCount: 40 }));
    for (let i = 1; i <= 3; i++) s.appendInput({ input: 'i', deviceId: 'd', moduleId: 'm', arrival: i, body: Buffer.alloc(1) });
    const big = new Map([['r', 'x'.repeat(400_000)]]);
    expect(s.saveCheckpoint(big, 3)).toBe(false);
    expect(s.degraded!.error).toMatch(/SQLITE_FULL/);
    expect(s.loadCheckpoint().uptoInputSeq).toBe(0);
    expect([...s.readInputsAfter(0)].map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(s.saveCheckpoint(new Map([['r', '{}']]), 3)).toBe(true);
    expect(s.degraded).toBeNull();
    s.close();
  });
});
