/**
 * The outbox's removal and body digest, each against the form it replaced, in the same run
 * (docs/performance.md "The outbox reads a backlog once"): `DELETE ... WHERE seq = ?` per acknowledged
 * seq against one `DELETE ... WHERE seq >= ? AND seq <= ?` per run of consecutive seqs (src/store/sqliteOutbox.ts
 * `removeTx`), on a table shaped as the outbox's; and `createHash().update().digest()` against one-shot
 * `crypto.hash` for src/store/encodeMessage.ts `bodyDigest` (checked equal first). Prints process CPU
 * per row and per digest, alternating the two forms three times.
 *
 *   npx tsx bench/outboxRemove.bench.ts
 */
import * as crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

const bodies = Array.from({ length: 20_000 }, (_, i) => ({ rule: `r${i % 50}`, group: { deviceId: `d${i}` }, window: { type: 'tumbling', start: '2026-12-07T00:00:00.000Z', end: '2026-12-07T00:00:10.000Z' }, count: i, values: { avg: i / 3, min: 1, max: i }, revision: 0 }));
const before = (b: unknown): string => crypto.createHash('sha1').update(JSON.stringify(b)).digest('base64').slice(0, 16);
const after = (b: unknown): string => crypto.hash('sha1', JSON.stringify(b), 'base64').slice(0, 16);
for (const b of bodies) if (before(b) !== after(b)) throw new Error('the two digests differ');
const cpu = (f: () => void): number => {
  const s = process.cpuUsage();
  f();
  const e = process.cpuUsage(s);
  return e.user + e.system;
};
for (let r = 0; r < 3; r++) {
  const a = cpu(() => { for (let k = 0; k < 5; k++) for (const b of bodies) before(b); }) / (5 * bodies.length);
  const b = cpu(() => { for (let k = 0; k < 5; k++) for (const x of bodies) after(x); }) / (5 * bodies.length);
  console.log(`body digest: createHash ${a.toFixed(2)} µs, crypto.hash ${b.toFixed(2)} µs (${(b / a).toFixed(2)}×)`);
}

const dir = mkdtempSync(join(tmpdir(), 'eddy-outbox-remove-'));
const db = new Database(join(dir, 'o.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE outbox (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, created_at INTEGER NOT NULL, bytes INTEGER NOT NULL, message TEXT NOT NULL)');
const ins = db.prepare('INSERT INTO outbox (seq, kind, created_at, bytes, message) VALUES (?, ?, ?, ?, ?)');
const one = db.prepare<[number], { bytes: number }>('DELETE FROM outbox WHERE seq = ? RETURNING bytes');
const range = db.prepare<[number, number], { bytes: number }>('DELETE FROM outbox WHERE seq >= ? AND seq <= ? RETURNING bytes');
let seq = 1;
const fill = db.transaction((n: number) => {
  for (let i = 0; i < n; i++) ins.run(seq++, 'summary', 0, 300, JSON.stringify(bodies[i % bodies.length]));
});
const perSeq = db.transaction((s: readonly number[]) => {
  let bytes = 0;
  for (const x of s) bytes += one.get(x)?.bytes ?? 0;
  return bytes;
});
const perRun = db.transaction((s: readonly number[]) => {
  let bytes = 0;
  for (const row of range.all(s[0]!, s[s.length - 1]!)) bytes += row.bytes;
  return bytes;
});
const PAGE = 1_000;
for (let r = 0; r < 3; r++) {
  const line: string[] = [];
  for (const [name, remove] of [['a delete per seq', perSeq], ['one range delete', perRun]] as const) {
    let used = 0;
    for (let k = 0; k < 20; k++) {
      const from = seq;
      fill(PAGE);
      const seqs = Array.from({ length: PAGE }, (_, i) => from + i);
      used += cpu(() => {
        if (remove(seqs) !== 300 * PAGE) throw new Error('not every row removed');
      });
    }
    line.push(`${name} ${(used / (20 * PAGE)).toFixed(2)} µs per row`);
  }
  console.log(`remove ${PAGE} acknowledged seqs: ${line.join(', ')}`);
}
db.close();
rmSync(dir, { recursive: true, force: true });
