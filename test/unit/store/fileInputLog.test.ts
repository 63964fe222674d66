import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { FileInputLog } from '../../../src/store/fileInputLog.js';
import { openStore } from '../../../src/store/store.js';
import type { InputRecord } from '../../../src/contracts/store.js';

const warnings: string[] = [];
const log = { info: () => {}, warn: (_o: object, m: string) => void warnings.push(m), error: (_o: object, m: string) => void warnings.push(m) };
const rec = (i: number, body = `{"t":${i}}`): InputRecord => ({ input: 'telemetry', deviceId: `dév${i % 3}`, moduleId: 'sim', arrival: 1_700_000_000_000 + i, body: Buffer.from(body) });
const segments = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith('inputs-')).sort();

describe('FileInputLog', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-inputs-'));
    warnings.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips records with increasing seqs, across a reopen', () => {
    const a = new FileInputLog(dir, log);
    const big = 'x'.repeat(200_000); // larger than the initial frame buffer
    const seqs = [a.appendInput(rec(1)), a.appendInput(rec(2, big)), a.appendInput({ ...rec(3), body: Buffer.alloc(0) })];
    expect(seqs).toEqual([1, 2, 3]);
    a.close();
    const b = new FileInputLog(dir, log);
    const got = [...b.readInputsAfter(0)];
    expect(got.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(got[0]).toEqual({ seq: 1, ...rec(1) });
    expect(got[1]!.body.toString()).toBe(big);
    expect(got[2]!.body.length).toBe(0);
    expect([...b.readInputsAfter(2)].map((r) => r.seq)).toEqual([3]);
    expect(b.appendInput(rec(4))).toBe(4);
    b.close();
  });

  it('round-trips names: ASCII, non-ASCII at any position, long, empty, and lone surrogates as UTF-8 makes them', () => {
    const names = ['telemetry', '', 'x'.repeat(64), 'y'.repeat(65) + 'é', 'é', 'sensor-ü-1', 'a'.repeat(63) + '€', '🌡️-12', 'z'.repeat(300)];
    const a = new FileInputLog(dir, log);
    for (const [i, n] of names.entries()) a.appendInput({ input: n, deviceId: n.toUpperCase(), moduleId: `m-${n}`, arrival: i, body: Buffer.from('{}') }, i % 2 === 0);
    a.appendInput({ input: 'in', deviceId: 'bad\ud800', moduleId: 'm', arrival: 99, body: Buffer.from('{}') });
    a.close();
    const got = [...new FileInputLog(dir, log).readInputsAfter(0)];
    expect(got.map((r) => [r.input, r.deviceId, r.moduleId])).toEqual([...names.map((n) => [n, n.toUpperCase(), `m-${n}`]), ['in', 'bad\ufffd', 'm']]);
  });

  it('keeps the sender\'s messageId when there is one; a frame without it has the bytes of the format before it, and a flipped flag bit is damage', () => {
    const a = new FileInputLog(dir, log);
    a.appendInput(rec(1));
    a.appendInput({ ...rec(2), messageId: 'mid-é-2' });
    a.appendInput({ ...rec(3), messageId: '' });
    a.close();
    const file = join(dir, segments(dir)[0]!);
    const got = [...new FileInputLog(dir, log).readInputsAfter(0)];
    expect(got).toEqual([{ seq: 1, ...rec(1) }, { seq: 2, ...rec(2), messageId: 'mid-é-2' }, { seq: 3, ...rec(3) }]);
    // The first frame, encoded by hand as the three-string format: [len][crc32][seq][arrival][input][deviceId][moduleId][body].
    const str = (x: string): Buffer => {
      const b = Buffer.from(x, 'utf8');
      const l = Buffer.alloc(2);
      l.writeUInt16LE(b.length);
      return Buffer.concat([l, b]);
    };
    const nums = Buffer.alloc(16);
    nums.writeDoubleLE(1, 0);
    nums.writeDoubleLE(rec(1).arrival, 8);
    const payload = Buffer.concat([nums, str('telemetry'), str(rec(1).deviceId), str('sim'), rec(1).body]);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(payload.length, 0);
    head.writeUInt32LE(crc32(payload), 4);
    const bytes = readFileSync(file);
    expect(bytes.subarray(0, 8 + payload.length)).toEqual(Buffer.concat([head, payload]));
    // Flip bit 31 of the second frame's length: it must read as damage (the CRC is seeded by the flag), not as a record.
    const second = 8 + payload.length;
    bytes.writeUInt32LE(bytes.readUInt32LE(second) & 0x7fff_ffff, second);
    writeFileSync(file, bytes);
    expect([...new FileInputLog(dir, log).readInputsAfter(0)].map((r) => r.seq)).toEqual([1]);
  });

  it('keeps the arrival on the redelivery filter\'s clock (`elapsed`) after the fixed fields; frames without it read as before, and a flipped bit 30 is damage', () => {
    const a = new FileInputLog(dir, log);
    a.appendInput(rec(1));
    a.appendInput({ ...rec(2), elapsed: 123.25 }, true);
    a.appendInput({ ...rec(3), elapsed: 124.5, messageId: 'mid-3' });
    a.close();
    const file = join(dir, segments(dir)[0]!);
    const got = [...new FileInputLog(dir, log).readInputsAfter(0)];
    expect(got).toEqual([{ seq: 1, ...rec(1) }, { seq: 2, ...rec(2), elapsed: 123.25 }, { seq: 3, ...rec(3), elapsed: 124.5, messageId: 'mid-3' }]);
    // The second frame as the header comment lays it out: bit 30 of the length, the CRC seeded with 2, elapsed after arrival.
    const bytes = readFileSync(file);
    const second = 8 + bytes.readUInt32LE(0);
    const word = bytes.readUInt32LE(second);
    expect(word & 0xc000_0000).toBe(0x4000_0000);
    const payload = bytes.subarray(second + 8, second + 8 + (word & 0x3fff_ffff));
    expect(bytes.readUInt32LE(second + 4)).toBe(crc32(payload, 2));
    expect([payload.readDoubleLE(0), payload.readDoubleLE(8), payload.readDoubleLE(16)]).toEqual([2, rec(2).arrival, 123.25]);
    // Bit 30 cleared: the CRC no longer matches, so the frame is damage, not a record without `elapsed`.
    bytes.writeUInt32LE(word & 0x3fff_ffff, second);
    writeFileSync(file, bytes);
    expect([...new FileInputLog(dir, log).readInputsAfter(0)].map((r) => r.seq)).toEqual([1]);
  });

  it('frames of a later build: reads past an extension (bit 29) it does not know, and a frame with any other new flag bit is a torn tail', () => {
    // Frames written here from the layout in src/store/fileInputLog.ts's header, as a later build would
    // write them (docs/deploy.md, "Updating and rolling back"): its new fields in the extension.
    const str = (s: string): Buffer => {
      const b = Buffer.from(s, 'utf8');
      const n = Buffer.alloc(2);
      n.writeUInt16LE(b.length);
      return Buffer.concat([n, b]);
    };
    const frame = (o: { seq: number; elapsed?: number; messageId?: string; ext?: Buffer; extraBit?: number; body: string }): Buffer => {
      const d = (x: number): Buffer => {
        const b = Buffer.alloc(8);
        b.writeDoubleLE(x);
        return b;
      };
      const parts = [d(o.seq), d(1_700_000_000_000 + o.seq)];
      if (o.elapsed !== undefined) parts.push(d(o.elapsed));
      parts.push(str('telemetry'), str(`dev${o.seq}`), str('sim'));
      if (o.messageId !== undefined) parts.push(str(o.messageId));
      if (o.ext !== undefined) {
        const n = Buffer.alloc(2);
        n.writeUInt16LE(o.ext.length);
        parts.push(n, o.ext);
      }
      parts.push(Buffer.from(o.body));
      const payload = Buffer.concat(parts);
      const flags = (o.messageId !== undefined ? 0x8000_0000 : 0) + (o.elapsed !== undefined ? 0x4000_0000 : 0) + (o.ext !== undefined ? 0x2000_0000 : 0) + (o.extraBit ?? 0);
      const seed = (o.messageId !== undefined ? 1 : 0) + (o.elapsed !== undefined ? 2 : 0) + (o.ext !== undefined ? 4 : 0);
      const head = Buffer.alloc(8);
      head.writeUInt32LE((payload.length + flags) >>> 0, 0);
      head.writeUInt32LE(crc32(payload, seed), 4);
      return Buffer.concat([head, payload]);
    };
    writeFileSync(
      join(dir, 'inputs-0000000000000001.log'),
      Buffer.concat([
        frame({ seq: 1, body: '{"t":1}' }),
        frame({ seq: 2, ext: Buffer.from([1, 2, 3, 250, 0, 7]), messageId: 'mid-2', elapsed: 9.5, body: '{"t":2}' }),
        frame({ seq: 3, ext: Buffer.alloc(0), body: '{"t":3}' }),
        // A flag bit this build has no meaning for (bit 28): not a record it could read right.
        frame({ seq: 4, extraBit: 0x1000_0000, body: '{"t":4}' }),
      ]),
    );
    const a = new FileInputLog(dir, log);
    expect([...a.readInputsAfter(0)].map((r) => [r.seq, r.deviceId, r.messageId, r.elapsed, r.body.toString()])).toEqual([
      [1, 'dev1', undefined, undefined, '{"t":1}'],
      [2, 'dev2', 'mid-2', 9.5, '{"t":2}'],
      [3, 'dev3', undefined, undefined, '{"t":3}'],
    ]);
    expect(warnings.some((w) => w.includes('torn tail'))).toBe(true);
    expect(a.appendInput(rec(4))).toBe(4);
    a.close();
  });

  it('ignores a torn tail, cuts it off, and appends readable records after it', () => {
    const a = new FileInputLog(dir, log);
    for (let i = 1; i <= 5; i++) a.appendInput(rec(i));
    a.close();
    const file = join(dir, segments(dir)[0]!);
    // Tear the last frame: drop its last 3 bytes, as a write cut short would.
    truncateSync(file, statSync(file).size - 3);
    const b = new FileInputLog(dir, log);
    expect(warnings.some((w) => w.includes('torn tail'))).toBe(true);
    expect([...b.readInputsAfter(0)].map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    // Seq 5 never became durable, so it is handed out again.
    expect(b.appendInput(rec(50))).toBe(5);
    expect([...b.readInputsAfter(0)].map((r) => r.arrival - 1_700_000_000_000)).toEqual([1, 2, 3, 4, 50]);
    b.close();
  });

  it('stops at garbage after the last frame and at a frame whose CRC fails', () => {
    const a = new FileInputLog(dir, log);
    for (let i = 1; i <= 4; i++) a.appendInput(rec(i));
    a.close();
    const file = join(dir, segments(dir)[0]!);
    appendFileSync(file, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])); // a zero-filled tail (power cut)
    const data = readFileSync(file);
    const frameLen = 8 + data.readUInt32LE(0);
    data[2 * frameLen + 20] ^= 0xff; // flip a byte inside frame 3's payload
    writeFileSync(file, data);
    const b = new FileInputLog(dir, log);
    expect([...b.readInputsAfter(0)].map((r) => r.seq)).toEqual([1, 2]);
    b.close();
  });

  it('reads a segment built outside eddy from the frame format in its header (Python struct + zlib.crc32)', () => {
    // The frame CRC is the standard CRC-32 (zlib's), so segments written by any earlier build read back.
    // test/unit/store/fixtures/inputs-0000000000000001.log was written by a 10-line Python script:
    // struct.pack('<II', len(p), zlib.crc32(p)) + p, p = '<dd' seq, arrival + three u16-prefixed UTF-8 names + body.
    copyFileSync(fileURLToPath(new URL('./fixtures/inputs-0000000000000001.log', import.meta.url)), join(dir, 'inputs-0000000000000001.log'));
    const a = new FileInputLog(dir, log);
    expect([...a.readInputsAfter(0)].map((r) => [r.seq, r.arrival, r.input, r.deviceId, r.moduleId, r.body.toString()])).toEqual([
      [1, 1_700_000_000_001, 'telemetry', 'dév1', 'sim', '{"t":1}'],
      [2, 1_700_000_000_002, 'telemetry', 'dev2', 'sim', '{"t":2}'],
    ]);
    expect(a.appendInput(rec(3))).toBe(3);
    a.close();
    expect(warnings).toEqual([]);
  });

  it('rotates at truncateUpTo and deletes only segments wholly covered', () => {
    const a = new FileInputLog(dir, log);
    for (let i = 1; i <= 10; i++) a.appendInput(rec(i));
    a.truncateUpTo(6); // records 7..10 still needed: the first segment stays
    expect(segments(dir)).toHaveLength(2);
    for (let i = 11; i <= 12; i++) a.appendInput(rec(i));
    expect([...a.readInputsAfter(6)].map((r) => r.seq)).toEqual([7, 8, 9, 10, 11, 12]);
    a.truncateUpTo(10); // the first segment (1..10) is now covered
    expect(segments(dir)).toHaveLength(2);
    expect([...a.readInputsAfter(0)].map((r) => r.seq)).toEqual([11, 12]);
    a.truncateUpTo(12);
    expect([...a.readInputsAfter(0)]).toEqual([]);
    expect(a.appendInput(rec(13))).toBe(13);
    a.close();
    const b = new FileInputLog(dir, log);
    expect(b.lastSeq()).toBe(13);
    expect([...b.readInputsAfter(12)].map((r) => r.seq)).toEqual([13]);
    b.close();
  });

  it('deferred appends reach the file only at flushInputs (one write), in order, also across a big body and before a rotation', () => {
    const a = new FileInputLog(dir, log);
    const file = join(dir, segments(dir)[0]!);
    expect(a.appendInput(rec(1))).toBe(1);
    const afterOne = statSync(file).size;
    const big = 'y'.repeat(100_000); // grows the buffer while frames are pending
    expect([a.appendInput(rec(2), true), a.appendInput(rec(3, big), true), a.appendInput(rec(4), true)]).toEqual([2, 3, 4]);
    expect(statSync(file).size).toBe(afterOne); // nothing written yet
    a.flushInputs();
    a.flushInputs(); // nothing left: a no-op
    const b = new FileInputLog(dir, log);
    expect([...b.readInputsAfter(0)].map((r) => [r.seq, r.body.length])).toEqual([[1, 7], [2, 7], [3, 100_000], [4, 7]]);
    b.close();
    // A rotation, a read and close() write what is pending first.
    a.appendInput(rec(5), true);
    a.truncateUpTo(4);
    a.appendInput(rec(6), true);
    expect([...a.readInputsAfter(4)].map((r) => r.seq)).toEqual([5, 6]);
    a.appendInput(rec(7), true);
    a.close();
    const c = new FileInputLog(dir, log);
    expect([...c.readInputsAfter(4)].map((r) => r.seq)).toEqual([5, 6, 7]);
    c.close();
  });

  it('a failed write is counted, does not throw, and later records stay readable', () => {
    const a = new FileInputLog(dir, log);
    a.appendInput(rec(1));
    // Simulate the disk refusing the write by pointing the log at a closed descriptor.
    const fd = (a as unknown as { fd: number }).fd;
    (a as unknown as { fd: number }).fd = 987_654;
    expect(a.appendInput(rec(2))).toBe(2);
    expect(a.failures).toBe(1);
    expect(a.failingSince).toBe(rec(2).arrival);
    (a as unknown as { fd: number }).fd = fd;
    expect(a.appendInput(rec(3))).toBe(3);
    expect(a.failingSince).toBeNull();
    expect([...a.readInputsAfter(0)].map((r) => r.seq)).toEqual([1, 3]);
    a.close();
  });

  it('every append that returned before a SIGKILL is readable afterwards', async () => {
    const child = fileURLToPath(new URL('./fixtures/inputLogChild.ts', import.meta.url));
    // Seeded kill points (number of acknowledged appends before the kill), spread over rotations.
    for (const killAfter of [137, 1_499, 2_711]) {
      const runDir = mkdtempSync(join(tmpdir(), 'eddy-kill-'));
      try {
        const printed = await runAndKill(child, runDir, killAfter);
        expect(printed.length).toBeGreaterThanOrEqual(killAfter);
        const store = openStore(runDir, { log, clock: { now: () => 0 } });
        const cp = store.loadCheckpoint();
        const replay = new Map([...store.readInputsAfter(cp.uptoInputSeq)].map((r) => [r.seq, r]));
        for (const { seq, i } of printed) {
          if (seq <= cp.uptoInputSeq) {
            // Covered by the checkpoint, whose state says how far it reached.
            expect(JSON.parse(cp.states.get('rule')!).upto).toBeGreaterThanOrEqual(seq);
            continue;
          }
          const r = replay.get(seq);
          expect(r, `seq ${seq} lost`).toBeDefined();
          expect(JSON.parse(r!.body.toString()).i).toBe(i);
          expect(r!.arrival).toBe(1000 + i);
        }
        // New appends continue after everything that survived.
        const last = Math.max(cp.uptoInputSeq, ...replay.keys());
        expect(store.appendInput(rec(0))).toBe(last + 1);
        store.close();
      } finally {
        rmSync(runDir, { recursive: true, force: true });
      }
    }
  }, 60_000);
});

/** Starts the child, SIGKILLs it once `killAfter` seqs were printed; returns every complete line printed. */
function runAndKill(script: string, dir: string, killAfter: number): Promise<{ seq: number; i: number }[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', script, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let lines = 0;
    let killed = false;
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (chunk: string) => {
      out += chunk;
      lines += chunk.split('\n').length - 1;
      if (!killed && lines > killAfter) {
        killed = true;
        p.kill('SIGKILL');
      }
    });
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', reject);
    p.on('exit', (_code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`child exited on its own: ${err}`));
      // A line without its newline was cut mid-print; its append still returned, but we only count complete lines.
      const complete = out.split('\n').slice(0, -1).filter((l) => l !== 'ready');
      resolve(complete.map((l) => {
        const [seq, i] = l.split(' ').map(Number);
        return { seq: seq!, i: i! };
      }));
    });
  });
}
