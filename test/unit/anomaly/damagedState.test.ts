/**
 * Detector state restored from a damaged, hand-edited or older checkpoint. docs/contract.md section 3:
 * bad input gets a clear error and a counter, never a crash, and the stream goes on; section 10,
 * `eddy_detector_resets_total`: a group whose detector cannot use its state starts learning afresh.
 * Property over every registered detector type (and `auto` with every component, htm included): a
 * real state after some events is damaged in a seeded way (mulberry32), restored, and fed further
 * events. Oracles independent of the detectors' code: a copy of the run with the undamaged
 * checkpoint (the other group must end exactly as there) and a fresh detector fed the events from
 * the reset on (the damaged group, if reset, must end exactly as that one).
 */
import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { detectorTypes, validateDetector } from '../../../src/anomaly/detectorRegistry.js';
import { AnomalyStage, type AnomalyStageResult } from '../../../src/anomaly/anomalyStage.js';
import type { AnomalyInput, DetectorType } from '../../../src/contracts/anomaly.js';
import { mulberry32 } from '../../../src/util/mulberry32.js';
import { Engine, type EngineObserver, type RuleSnapshot } from '../../../src/rules/engine.js';
import { compileRule } from '../../../src/rules/compileRule.js';
import type { IngestEvent } from '../../../src/contracts/event.js';

const DEFS: Record<string, Record<string, unknown> & { type: string }> = {
  threshold: { type: 'threshold', above: 13, below: 7, hysteresis: 0.5 },
  rateOfChange: { type: 'rateOfChange', maxPerSecond: 0.1 },
  flatline: { type: 'flatline', duration: '10m', tolerance: 0.01 },
  missing: { type: 'missing', timeout: '5m' },
  zscore: { type: 'zscore', window: 50, threshold: 4 },
  ewma: { type: 'ewma', alpha: 0.05, threshold: 4 },
  spikeAndDip: { type: 'spikeAndDip', confidence: 99, history: 50, mode: 'both' },
  changePoint: { type: 'changePoint', confidence: 99, history: 50 },
  // Every component on, with the seasonal baseline, recurrence, a learning time and the htm encoder's options: every part of its state.
  auto: { type: 'auto', components: ['point', 'range', 'seasonal', 'sequence', 'context', 'shift', 'htm'], learn: 50, recurrence: true, learnTime: '1h', htmTime: true, htmAdapt: true },
};

type Path = Array<string | number>;

/** Every place in a JSON tree (long arrays as a whole: their elements are alike). */
function places(x: unknown, p: Path = [], out: Path[] = []): Path[] {
  if (p.length > 0) out.push(p);
  if (Array.isArray(x)) {
    if (x.length <= 8) x.forEach((v, i) => places(v, [...p, i], out));
  } else if (x !== null && typeof x === 'object') for (const [k, v] of Object.entries(x)) places(v, [...p, k], out);
  return out;
}

const at = (x: unknown, p: Path): unknown => p.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], x);

const MODES = ['delete', 'null', 'string', 'object', 'nan', 'negative', 'huge', 'halveArray', 'extendArray', 'truncateBase64', 'garbleBase64', 'whole'] as const;
type Mode = (typeof MODES)[number];

/** Damages `d` (a detector state as parsed from checkpoint JSON) in place; returns where, or null when `mode` finds no place. */
function damage(holder: { d: unknown }, r: () => number, mode: Mode): string | null {
  if (mode === 'whole') {
    holder.d = [null, 'x', 3, {}, []][Math.floor(r() * 5)];
    return 'whole';
  }
  const d = holder.d;
  const all = places(d);
  const pick = (f: (v: unknown) => boolean): Path | null => {
    const c = all.filter((p) => f(at(d, p)));
    return c.length > 0 ? c[Math.floor(r() * c.length)]! : null;
  };
  const isNum = (v: unknown): boolean => typeof v === 'number';
  const isB64 = (v: unknown): boolean => typeof v === 'string' && v.length > 20;
  const p = pick(
    mode === 'nan' || mode === 'negative' || mode === 'huge'
      ? isNum
      : mode === 'halveArray'
        ? (v) => Array.isArray(v) && v.length > 0
        : mode === 'extendArray'
          ? Array.isArray
          : mode === 'truncateBase64' || mode === 'garbleBase64'
            ? isB64
            : () => true,
  );
  if (p === null) return null;
  const parent = at(d, p.slice(0, -1)) as Record<string | number, unknown>;
  const k = p[p.length - 1]!;
  const v = parent[k];
  if (mode === 'delete') {
    if (Array.isArray(parent)) parent.splice(k as number, 1);
    else delete parent[k];
  } else if (mode === 'null') parent[k] = null;
  else if (mode === 'string') parent[k] = 'x';
  else if (mode === 'object') parent[k] = {};
  else if (mode === 'nan') parent[k] = Number.NaN;
  else if (mode === 'negative') parent[k] = -7;
  else if (mode === 'huge') parent[k] = 1e300;
  else if (mode === 'halveArray') (v as unknown[]).length = Math.floor((v as unknown[]).length / 2);
  else if (mode === 'extendArray') (v as unknown[]).push(1, 'x', null);
  else if (mode === 'truncateBase64') parent[k] = (v as string).slice(0, Math.floor((v as string).length / 2));
  else parent[k] = `${(v as string).slice(0, 10)}!?*${(v as string).slice(13)}`;
  return p.join('.');
}

const STEP_MS = 300_000;

/** Group `key`'s i-th event: a noisy daily-ish wave with a spike now and then, 5 minutes apart. */
function input(key: string, i: number, noise: () => number): AnomalyInput {
  const t = 1_767_225_600_000 + i * STEP_MS;
  return { time: t, arrival: t, key, group: { d: key }, value: 10 + Math.sin(i / 12) + (noise() - 0.5) + (i % 97 === 0 ? 30 : 0) };
}

const BEFORE = 300;
const AFTER = 150;

describe('damaged detector state from a checkpoint', () => {
  it('covers every registered detector type', () => {
    expect(Object.keys(DEFS).sort()).toEqual(Object.keys(detectorTypes).sort());
  });

  describe.each(Object.keys(DEFS))('%s', (name) => {
    const v = validateDetector(DEFS[name]!);
    if (!v.ok) throw new Error(v.error);
    const rule = { detector: v.detector as DetectorType, config: v.config, cooldownMs: 0, detectorName: name };

    it.each(MODES)('damage %s: never a crash or a stuck group; a reset group learns afresh, the other keeps its state', (mode) => {
      let damagedAny = 0;
      for (let seed = 1; seed <= 4; seed++) {
        const r = mulberry32(seed * 7919 + MODES.indexOf(mode));
        const live = new AnomalyStage(rule);
        const noiseA = mulberry32(seed);
        const noiseB = mulberry32(seed + 100);
        for (let i = 0; i < BEFORE; i++) {
          live.process(input('a', i, noiseA));
          live.process(input('b', i, noiseB));
        }
        // The checkpoint: the groups as JSON text, read back twice (one copy damaged).
        const saved = JSON.stringify([...live.state.groups]);
        const good = new AnomalyStage(rule, { groups: new Map(JSON.parse(saved) as Array<[string, unknown]>) });
        // The undamaged checkpoint restores without a reset (else the other group's oracle proves nothing),
        // and so does the live state a hot reload of an unchanged rule carries over (src/rules/engine.ts setRules).
        expect(good.resetGroups).toBe(0);
        expect(new AnomalyStage(rule, live.state).resetGroups).toBe(0);
        const entries = JSON.parse(saved) as Array<[string, { d: unknown }]>;
        const where = damage(entries.find(([k]) => k === 'a')![1], r, mode);
        if (where === null) continue;
        damagedAny++;
        const resets: string[] = [];
        const hurt = new AnomalyStage(rule, { groups: new Map(entries) }, (key, why) => {
          resets.push(key);
          expect(why.length).toBeGreaterThan(0);
        });
        // A state of the wrong kind is found at the restore, before any event.
        let resetAt = resets.length > 0 ? BEFORE : -1;
        if (mode === 'whole') expect(resets, `${name} whole`).toEqual(['a']);
        const results: AnomalyStageResult[] = [];
        // From the reset on, a fresh detector of group a is fed the same events (the oracle of "learns afresh").
        const fresh = new AnomalyStage(rule);
        const nA = mulberry32(seed + 200);
        const nB = mulberry32(seed + 300);
        for (let i = BEFORE; i < BEFORE + AFTER; i++) {
          const ea = input('a', i, nA);
          const eb = input('b', i, nB);
          const before = resets.length;
          results.push(hurt.process(ea));
          good.process(ea);
          if (resets.length > before && resetAt < 0) resetAt = i;
          if (resetAt >= 0) fresh.process(ea);
          results.push(hurt.process(eb));
          good.process(eb);
          if (rule.detector.tick) {
            hurt.tick(ea.arrival + 1);
            good.tick(ea.arrival + 1);
          }
        }
        const ctx = `${name} ${mode} seed ${seed} at ${where}`;
        // Never stuck: no event rejected, every score a finite number.
        expect(results.filter((x) => x.rejected !== undefined).map((x) => x.rejected), ctx).toEqual([]);
        expect(results.every((x) => Number.isFinite(x.step.score)), ctx).toBe(true);
        // The undamaged group ends exactly as with the undamaged checkpoint.
        expect(JSON.stringify(hurt.state.groups.get('b')), ctx).toBe(JSON.stringify(good.state.groups.get('b')));
        // The damaged group is reset at most once, and then is the fresh detector's state.
        expect(resets.every((k) => k === 'a'), ctx).toBe(true);
        expect(hurt.resetGroups, ctx).toBe(resets.length);
        if (resetAt >= 0) {
          expect(resets.length, ctx).toBe(1);
          expect(JSON.stringify((hurt.state.groups.get('a') as { d: unknown }).d), ctx).toBe(JSON.stringify((fresh.state.groups.get('a') as { d: unknown }).d));
        }
        // What it checkpoints next restores and runs on without a rejection either (a NaN kept becomes null in JSON).
        const again = new AnomalyStage(rule, { groups: new Map(JSON.parse(JSON.stringify([...hurt.state.groups])) as Array<[string, unknown]>) });
        const nC = mulberry32(seed + 400);
        for (let i = BEFORE + AFTER; i < BEFORE + AFTER + 20; i++) expect(again.process(input('a', i, nC)).rejected, ctx).toBeUndefined();
      }
      // Not vacuous: every state has fields to damage, and auto's (with htm's base64 arrays) has
      // something for every mode; the simpler states have no arrays, base64 or numbers to damage.
      if (name === 'auto' || ['delete', 'null', 'string', 'object', 'whole'].includes(mode)) expect(damagedAny).toBe(4);
    }, 60_000);
  });
});

describe('damaged group entries from a checkpoint', () => {
  const v = validateDetector(DEFS.zscore!);
  if (!v.ok) throw new Error(v.error);
  const rule = { detector: v.detector as DetectorType, config: v.config, cooldownMs: 0, detectorName: 'zscore' };
  const ENTRY_DAMAGE: Record<string, (e: Record<string, unknown>) => unknown> = {
    'entry null': () => null,
    'entry a string': () => 'x',
    'group null': (e) => ({ ...e, group: null }),
    'alert sequence a string': (e) => ({ ...e, n: 'x' }),
    'born negative': (e) => ({ ...e, b: -1 }),
    'active a number': (e) => ({ ...e, active: 1 }),
    'lastRaise a string': (e) => ({ ...e, lastRaise: 'x' }),
    'recency mark an object': (e) => ({ ...e, at: {} }),
  };
  it.each(Object.keys(ENTRY_DAMAGE))('%s: restores without a crash, rejects nothing, reuses no alert id, keeps the other group', (how) => {
    const live = new AnomalyStage(rule);
    const nA = mulberry32(1);
    const nB = mulberry32(2);
    // (seq, born) of group a's alerts: with the rule and key, its messageId (docs/contract.md section 5).
    const ids = new Set<string>();
    for (let i = 0; i < BEFORE; i++) {
      const a = live.process(input('a', i, nA)).alert;
      if (a) ids.add(`${a.seq}/${a.born}`);
      live.process(input('b', i, nB));
    }
    expect(ids.size).toBeGreaterThan(0);
    const saved = JSON.stringify([...live.state.groups]);
    const good = new AnomalyStage(rule, { groups: new Map(JSON.parse(saved) as Array<[string, unknown]>) });
    const entries = JSON.parse(saved) as Array<[string, Record<string, unknown>]>;
    const i0 = entries.findIndex(([k]) => k === 'a');
    entries[i0]![1] = ENTRY_DAMAGE[how]!(entries[i0]![1]) as Record<string, unknown>;
    const hurt = new AnomalyStage(rule, { groups: new Map(entries) });
    const n2 = mulberry32(3);
    const n3 = mulberry32(4);
    for (let i = BEFORE; i < BEFORE + AFTER; i++) {
      const ea = input('a', i, n2);
      const r = hurt.process(ea);
      good.process(ea);
      expect(r.rejected).toBeUndefined();
      if (r.alert) {
        expect(ids.has(`${r.alert.seq}/${r.alert.born}`), `${how}: alert id reused`).toBe(false);
        ids.add(`${r.alert.seq}/${r.alert.born}`);
      }
      const eb = input('b', i, n3);
      expect(hurt.process(eb).rejected).toBeUndefined();
      good.process(eb);
    }
    expect(JSON.stringify(hurt.state.groups.get('b'))).toBe(JSON.stringify(good.state.groups.get('b')));
  });
});

describe('damaged fields the detector reads without failing', () => {
  // ewma (docs/contract.md section 5) reads a count that is a string as "never warmed up": no throw,
  // no NaN, a score of 0 for ever, so the group never raised again. Found at the restore instead.
  it.each([
    ['count a string', { n: 'x' }],
    ['mean an object', { mean: {} }],
    ['variance a list', { variance: [1] }],
  ])('ewma, %s: reset at the restore, and a spike after the warm-up raises', (_how, bad) => {
    const v = validateDetector(DEFS.ewma!);
    if (!v.ok) throw new Error(v.error);
    const rule = { detector: v.detector as DetectorType, config: v.config, cooldownMs: 0, detectorName: 'ewma' };
    const live = new AnomalyStage(rule);
    const noise = mulberry32(5);
    for (let i = 0; i < 100; i++) live.process({ ...input('a', i, noise), value: 10 + noise() - 0.5 });
    const entries = JSON.parse(JSON.stringify([...live.state.groups])) as Array<[string, { d: Record<string, unknown> }]>;
    Object.assign(entries[0]![1].d, bad);
    const resets: string[] = [];
    const hurt = new AnomalyStage(rule, { groups: new Map(entries) }, (key) => resets.push(key));
    expect(resets).toEqual(['a']);
    const raised: number[] = [];
    for (let i = 100; i < 200; i++) {
      const r = hurt.process({ ...input('a', i, noise), value: i === 190 ? 40 : 10 + noise() - 0.5 });
      if (r.alert?.state === 'raised') raised.push(i);
    }
    expect(raised).toEqual([190]);
  });
});

describe('damaged detector state found by a tick', () => {
  it('missing: a state the tick cannot read is reset there (counted once), and the other group still raises', () => {
    const v = validateDetector(DEFS.missing!);
    if (!v.ok) throw new Error(v.error);
    const rule = { detector: v.detector as DetectorType, config: v.config, cooldownMs: 0, detectorName: 'missing' };
    const live = new AnomalyStage(rule);
    const noise = mulberry32(1);
    for (let i = 0; i < 10; i++) {
      live.process(input('a', i, noise));
      live.process(input('b', i, noise));
    }
    const entries = JSON.parse(JSON.stringify([...live.state.groups])) as Array<[string, { d: unknown }]>;
    const resets: string[] = [];
    const hurt = new AnomalyStage(rule, { groups: new Map(entries) });
    hurt.reset = (key) => resets.push(key);
    // `missing` reads every object it is handed (older shapes too), so only a state that is no object
    // makes its tick throw; the restore resets those (above), so this one is damaged after it.
    (hurt.state.groups.get('a') as { d: unknown }).d = null;
    const last = input('b', 9, noise).arrival;
    // Ticks before any event: only the tick sees the damage.
    const alerts = [...hurt.tick(last + 1_000), ...hurt.tick(last + 10 * 60_000), ...hurt.tick(last + 20 * 60_000)];
    expect(resets).toEqual(['a']);
    expect(hurt.resetGroups).toBe(1);
    expect(alerts.map((a) => [a.key, a.state])).toEqual([['b', 'raised']]);
    // The reset group learns afresh from its next event, and times out again after it.
    expect(hurt.process(input('a', 100, noise)).rejected).toBeUndefined();
    expect(hurt.tick(input('a', 100, noise).arrival + 10 * 60_000).map((a) => [a.key, a.state])).toEqual([['a', 'raised']]);
  });
});

describe('damaged detector state through the engine', () => {
  it('the htm state of one device is damaged: that device is reset and told to the observer, the other keeps alerting', () => {
    const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
    const compiled = compileRule('htmRule', { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'temp', detector: { type: 'auto', components: ['point', 'htm'], season: 'none', learn: 50 } });
    if (!compiled.ok) throw new Error(compiled.error);
    const make = () => {
      const scheduler = new VirtualTimeScheduler();
      scheduler.frame = T0 + 7 * 86_400_000;
      const rejected: string[] = [];
      const resets: Array<[string, string]> = [];
      const observer: EngineObserver = {
        rejected: (reason) => rejected.push(reason),
        windowResult: () => undefined,
        alert: () => undefined,
        detectorReset: (rule, group) => resets.push([rule, group]),
      };
      const engine = new Engine({ scheduler, emit: () => undefined, observer, tickIntervalMs: 0 });
      const ev = (deviceId: string, i: number): IngestEvent => ({ body: { t: T0 + i * STEP_MS, temp: 20 + Math.sin(i / 5) }, deviceId, moduleId: 'sensor', input: 'telemetry', arrival: scheduler.now() });
      return { engine, rejected, resets, ev };
    };
    const a = make();
    a.engine.setRules([compiled.rule]);
    for (let i = 0; i < 200; i++) a.engine.process([a.ev('d1', i), a.ev('d2', i)]);
    const snap = JSON.parse(JSON.stringify([...a.engine.snapshot()])) as Array<[string, RuleSnapshot]>;
    const groups = snap[0]![1].groups as Array<[string, { d: { m: Record<string, unknown> } }]>;
    const d1 = groups.find(([k]) => k.includes('d1'))![1];
    // A base64 array of the htm memory cut short, as a torn or hand-edited checkpoint has it.
    const field = Object.keys(d1.d.m).find((k) => typeof d1.d.m[k] === 'string' && (d1.d.m[k] as string).length > 20)!;
    d1.d.m[field] = (d1.d.m[field] as string).slice(0, 12);
    const b = make();
    b.engine.restore(new Map(snap));
    b.engine.setRules([compiled.rule]);
    for (let i = 200; i < 260; i++) b.engine.process([b.ev('d1', i), b.ev('d2', i)]);
    expect(b.rejected).toEqual([]);
    expect(b.resets).toHaveLength(1);
    expect(b.resets[0]![0]).toBe('htmRule');
    expect(b.resets[0]![1]).toContain('d1');
  });
});
