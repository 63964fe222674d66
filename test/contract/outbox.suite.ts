import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import type { OutputMessage } from '../../src/contracts/output.js';
import type { Outbox } from '../../src/contracts/store.js';

/** Builds one output message; `n` varies the id and body so sizes differ a little. */
export function makeMessage(n: number, over: Partial<OutputMessage> = {}): OutputMessage {
  const kind = over.kind ?? 'summary';
  const rule = over.rule ?? 'r1';
  const groupKey = over.groupKey ?? 'dev1';
  const body =
    kind === 'summary'
      ? { rule, group: { deviceId: groupKey }, window: { type: 'tumbling' as const, start: new Date(n * 60_000).toISOString(), end: new Date((n + 1) * 60_000).toISOString() }, count: n, values: { avg: n / 3, ü: null }, revision: 0 }
      : { rule, group: { deviceId: groupKey }, state: 'raised' as const, time: new Date(n * 1000).toISOString(), value: n, score: 0.99, detector: 'spikeAndDip', kind: 'spike' };
  return { id: `${rule}-${groupKey}-${n}`, output: kind === 'summary' ? 'summaries' : 'alerts', kind, rule, groupKey, body, createdAt: 1_000_000 + n * 1000, ...over };
}

const size = (m: OutputMessage): number => Buffer.byteLength(JSON.stringify(m), 'utf8');

/**
 * The one suite every Outbox implementation passes (after MQTT.js's
 * abstract_store): `create` returns a fresh, empty outbox; `dispose` cleans up after it.
 */
export function outboxSuite(name: string, create: () => Outbox, dispose: (o: Outbox) => void = (o) => o.close()): void {
  describe(`Outbox contract: ${name}`, () => {
    let outbox: Outbox;
    beforeEach(() => {
      outbox = create();
    });
    afterEach(() => dispose(outbox));

    it('starts empty', () => {
      expect(outbox.peek(10)).toEqual([]);
      expect(outbox.stats()).toEqual({ pending: 0, bytes: 0, oldest: null });
    });

    it('keeps creation order with increasing seqs and round-trips each message', () => {
      const msgs = [makeMessage(1), makeMessage(2, { kind: 'alert' }), makeMessage(3, { rule: 'r2' })];
      outbox.append(msgs.slice(0, 1));
      outbox.append(msgs.slice(1));
      const got = outbox.peek(10);
      expect(got.map((r) => r.message)).toEqual(msgs);
      expect(got[0]!.seq).toBeLessThan(got[1]!.seq);
      expect(got[1]!.seq).toBeLessThan(got[2]!.seq);
      expect(got.map((r) => r.createdAt)).toEqual(msgs.map((m) => m.createdAt));
      expect(got.map((r) => r.bytes)).toEqual(msgs.map(size));
    });

    it('appends an id only once, even after the first copy was sent and removed (replay after a crash)', () => {
      outbox.append([makeMessage(1), makeMessage(2)]);
      outbox.append([makeMessage(2), makeMessage(3)]);
      expect(outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-1', 'r1-dev1-2', 'r1-dev1-3']);
      outbox.remove(outbox.peek(10).map((r) => r.seq));
      outbox.append([makeMessage(1), makeMessage(3), makeMessage(4)]);
      expect(outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-4']);
      expect(outbox.stats().pending).toBe(1);
    });

    it('an id appended again with a different body is a conflict: kept out, counted, its id reported; the same body is a plain re-send', () => {
      const m = makeMessage(1);
      outbox.append([m]);
      expect(outbox.conflicts().total).toBe(0);
      // A re-send after a crash: same id, same body (createdAt may differ), not a conflict.
      outbox.append([{ ...m, createdAt: m.createdAt + 5_000 }]);
      expect(outbox.conflicts().total).toBe(0);
      // Same id, another body (docs/contract.md section 5: never two bodies for one window and revision).
      const other = { ...m, body: { ...(m.body as object), count: 99 } } as typeof m;
      outbox.append([other]);
      outbox.append([makeMessage(2), other]);
      expect(outbox.conflicts().total).toBe(2);
      expect(outbox.conflicts().recent).toEqual([m.id, m.id]);
      // Neither conflicting copy was stored: the first body stays, once.
      expect(outbox.peek(10).map((r) => [r.message.id, r.message.body])).toEqual([[m.id, m.body], [makeMessage(2).id, makeMessage(2).body]]);
      // Within one append too.
      outbox.append([makeMessage(3), { ...makeMessage(3), body: { ...(makeMessage(3).body as object), revision: 7 } } as OutputMessage]);
      expect(outbox.conflicts().total).toBe(3);
    });

    it('pages with limit and afterSeq', () => {
      outbox.append([1, 2, 3, 4, 5].map((n) => makeMessage(n)));
      const first = outbox.peek(2);
      expect(first.map((r) => r.message.id)).toEqual(['r1-dev1-1', 'r1-dev1-2']);
      const next = outbox.peek(2, first[1]!.seq);
      expect(next.map((r) => r.message.id)).toEqual(['r1-dev1-3', 'r1-dev1-4']);
      expect(outbox.peek(10, next[1]!.seq).map((r) => r.message.id)).toEqual(['r1-dev1-5']);
      expect(outbox.peek(0)).toEqual([]);
    });

    it('removes by seq, ignores unknown seqs, and keeps stats exact', () => {
      const msgs = [1, 2, 3, 4].map((n) => makeMessage(n));
      outbox.append(msgs);
      const seqs = outbox.peek(10).map((r) => r.seq);
      outbox.remove([seqs[0]!, seqs[2]!, 999_999]);
      expect(outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-2', 'r1-dev1-4']);
      expect(outbox.stats()).toEqual({ pending: 2, bytes: size(msgs[1]!) + size(msgs[3]!), oldest: new Date(msgs[1]!.createdAt).toISOString() });
      outbox.remove([seqs[0]!]);
      expect(outbox.stats().pending).toBe(2);
      outbox.remove(seqs);
      expect(outbox.stats()).toEqual({ pending: 0, bytes: 0, oldest: null });
    });

    it('never reuses a seq after it empties', () => {
      outbox.append([makeMessage(1), makeMessage(2)]);
      const before = outbox.peek(10).map((r) => r.seq);
      outbox.remove(before);
      outbox.append([makeMessage(3)]);
      expect(outbox.peek(10)[0]!.seq).toBeGreaterThan(Math.max(...before));
      // A cursor left at the old tail still finds the new record.
      expect(outbox.peek(10, Math.max(...before)).map((r) => r.message.id)).toEqual(['r1-dev1-3']);
    });

    it('expires by TTL and counts the drops by kind', () => {
      // createdAt = 1_000_000 + n * 1000
      outbox.append([makeMessage(1), makeMessage(2, { kind: 'alert' }), makeMessage(3), makeMessage(10), makeMessage(11, { kind: 'alert' })]);
      const now = 1_000_000 + 12_000;
      const drops = outbox.enforce(now, { maxBytes: Number.MAX_SAFE_INTEGER, ttlMs: 10_000 });
      // cutoff = 1_002_000: n=1 expires; n=2 is exactly at the cutoff and stays.
      expect(drops).toEqual({ budget: { summary: 0, alert: 0 }, ttl: { summary: 1, alert: 0 } });
      const drops2 = outbox.enforce(now + 5_000, { maxBytes: Number.MAX_SAFE_INTEGER, ttlMs: 10_000 });
      expect(drops2).toEqual({ budget: { summary: 0, alert: 0 }, ttl: { summary: 1, alert: 1 } });
      expect(outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-10', 'r1-dev1-11']);
      expect(outbox.stats().pending).toBe(2);
      expect(outbox.stats().oldest).toBe(new Date(1_010_000).toISOString());
    });

    it('over budget drops the oldest summaries first and keeps alerts', () => {
      const msgs = [makeMessage(1, { kind: 'alert' }), makeMessage(2), makeMessage(3), makeMessage(4, { kind: 'alert' }), makeMessage(5)];
      outbox.append(msgs);
      const total = msgs.reduce((a, m) => a + size(m), 0);
      // Room for everything but one summary: the oldest summary (n=2) goes.
      const drops = outbox.enforce(0, { maxBytes: total - 1, ttlMs: 0 });
      expect(drops).toEqual({ budget: { summary: 1, alert: 0 }, ttl: { summary: 0, alert: 0 } });
      expect(outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-1', 'r1-dev1-3', 'r1-dev1-4', 'r1-dev1-5']);
      expect(outbox.stats().bytes).toBe(total - size(msgs[1]!));
    });

    it('drops alerts, oldest first, only when summaries alone cannot make room', () => {
      const msgs = [makeMessage(1, { kind: 'alert' }), makeMessage(2), makeMessage(3, { kind: 'alert' }), makeMessage(4, { kind: 'alert' })];
      outbox.append(msgs);
      const drops = outbox.enforce(0, { maxBytes: size(msgs[3]!) + 1, ttlMs: 0 });
      expect(drops).toEqual({ budget: { summary: 1, alert: 2 }, ttl: { summary: 0, alert: 0 } });
      expect(outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-4']);
      expect(outbox.stats().bytes).toBeLessThanOrEqual(size(msgs[3]!) + 1);
    });

    it('keeps the records it is told to keep (in flight): neither dropped nor counted, by budget or TTL', () => {
      const msgs = [makeMessage(1), makeMessage(2), makeMessage(3), makeMessage(4, { kind: 'alert' }), makeMessage(5)];
      outbox.append(msgs);
      const seqs = outbox.peek(10).map((r) => r.seq);
      // TTL: n = 1 ... 3 expired (createdAt 1_000_000 + n * 1000), n = 2 in flight.
      const ttl = outbox.enforce(1_000_000 + 4_000 + 10_000, { maxBytes: Number.MAX_SAFE_INTEGER, ttlMs: 10_000 }, new Set([seqs[1]!]));
      expect(ttl).toEqual({ budget: { summary: 0, alert: 0 }, ttl: { summary: 2, alert: 0 } });
      expect(outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-2', 'r1-dev1-4', 'r1-dev1-5']);
      // Budget: room for one record; the kept summary stays (and keeps its bytes), the other summary goes first, then the alert.
      const budget = outbox.enforce(0, { maxBytes: size(msgs[1]!) + 1, ttlMs: 0 }, new Map([[seqs[1]!, 'g']]));
      expect(budget).toEqual({ budget: { summary: 1, alert: 1 }, ttl: { summary: 0, alert: 0 } });
      expect(outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-dev1-2']);
      expect(outbox.stats()).toMatchObject({ pending: 1, bytes: size(msgs[1]!) });
      // Once no longer in flight (its send failed), it can go.
      expect(outbox.enforce(0, { maxBytes: 0, ttlMs: 0 })).toEqual({ budget: { summary: 1, alert: 0 }, ttl: { summary: 0, alert: 0 } });
      expect(outbox.stats().pending).toBe(0);
    });

    it('under budget and TTL drops nothing', () => {
      outbox.append([makeMessage(1), makeMessage(2)]);
      expect(outbox.enforce(1_000_000, { maxBytes: 10_000, ttlMs: 60_000 })).toEqual({ budget: { summary: 0, alert: 0 }, ttl: { summary: 0, alert: 0 } });
      expect(outbox.stats().pending).toBe(2);
    });

    it('matches a simple model under random appends, removes and enforcement', () => {
      // A seeded LCG keeps the run reproducible without fast-check's shrinking machinery.
      let seed = 42;
      const rand = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
      const model: { id: string; kind: string; bytes: number }[] = [];
      let n = 0;
      for (let step = 0; step < 300; step++) {
        const r = rand();
        if (r < 0.5) {
          const batch = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => makeMessage(++n, { kind: rand() < 0.2 ? 'alert' : 'summary', groupKey: `g${n % 3}` }));
          outbox.append(batch);
          for (const m of batch) model.push({ id: m.id, kind: m.kind, bytes: size(m) });
        } else if (r < 0.85) {
          const recs = outbox.peek(5);
          const pick = recs.filter(() => rand() < 0.5);
          outbox.remove(pick.map((p) => p.seq));
          for (const p of pick) model.splice(model.findIndex((x) => x.id === p.message.id), 1);
        } else {
          const maxBytes = Math.floor(rand() * 3000);
          outbox.enforce(0, { maxBytes, ttlMs: 0 });
          for (const kind of ['summary', 'alert']) {
            let total = model.reduce((a, x) => a + x.bytes, 0);
            for (let i = 0; i < model.length && total > maxBytes; ) {
              if (model[i]!.kind === kind) {
                total -= model[i]!.bytes;
                model.splice(i, 1);
              } else i++;
            }
          }
        }
        expect(outbox.peek(1000).map((x) => x.message.id)).toEqual(model.map((x) => x.id));
        expect(outbox.stats().bytes).toBe(model.reduce((a, x) => a + x.bytes, 0));
      }
    });
  });
}
