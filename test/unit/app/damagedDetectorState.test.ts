import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EddyApp } from '../../../src/app/eddyApp.js';
import { silentLogger, type Logger } from '../../../src/contracts/logger.js';
import type { RuleSet } from '../../../src/contracts/rule.js';
import { systemTimers, type TimerHandle, type Timers } from '../../../src/contracts/timers.js';
import { createMetrics, METRIC_NAMES } from '../../../src/metrics/metrics.js';
import { openStore } from '../../../src/store/store.js';

/**
 * The whole app over a real store: a checkpoint whose htm detector state of one device is cut short (a
 * torn or hand-edited checkpoint) is restored. docs/contract.md section 3: that group starts learning
 * afresh, counted in `eddy_detector_resets_total` and logged at warn; no event is rejected, and the other
 * device's state carries on (test/unit/anomaly/damagedState.test.ts has the property over every detector).
 */

const START = Date.UTC(2026, 0, 1, 0, 0, 0);
const rules = {
  zs: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated', value: 'temp', detector: { type: 'zscore', window: 20, threshold: 4 }, output: 'alerts' },
  htm: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated', value: 'temp', detector: { type: 'auto', components: ['point', 'htm'], season: 'none', learn: 50 }, output: 'alerts' },
} as unknown as RuleSet;

function manualTimers(): Timers {
  return { ...systemTimers, setInterval: () => ({ unref: () => undefined }) as TimerHandle, clearInterval: () => undefined };
}

describe('EddyApp: damaged detector state in the checkpoint', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-app-dmg-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function open(log: Logger = silentLogger, devices: readonly string[] = ['d1', 'd2']) {
    const metrics = createMetrics({ processMetrics: false });
    const app = new EddyApp({
      version: 'test', mode: 'local', dataDir: dir, rulesFile: 'test.json', defaultRules: false, storeMaxMB: 64,
      fileRules: rules, fileErrors: [], configErrors: [],
      store: openStore(dir, { log: silentLogger, clock: { now: () => Date.now() }, ttlMs: 0 }), metrics, log,
      clock: { now: () => Date.now() }, monotonic: { now: () => performance.now() }, timers: manualTimers(),
    });
    app.runLocal({ send: async () => undefined });
    const feed = (from: number, to: number): void => {
      for (let i = from; i < to; i++) {
        for (const deviceId of devices) {
          const body = { timeCreated: new Date(START + i * 60_000).toISOString(), temp: 20 + Math.sin(i / 5) };
          app.handleInput('telemetry', Buffer.from(JSON.stringify(body)), { deviceId, moduleId: 'm1', messageId: `${deviceId}-${i}` });
        }
      }
    };
    return { app, metrics, feed };
  }

  it('resets the damaged group, counts and logs it, rejects nothing', async () => {
    const first = open();
    first.feed(0, 120);
    await first.app.stop(2_000);

    // Cut d1's longest base64 array of the htm memory short, in the stored checkpoint.
    const store = openStore(dir, { log: silentLogger, clock: { now: () => Date.now() }, ttlMs: 0 });
    const cp = store.loadCheckpoint();
    const snap = JSON.parse(cp.states.get('htm')!) as { groups: Array<[string, { d: { m: Record<string, unknown> } }]> };
    const m = snap.groups.find(([k]) => k.includes('d1'))![1].d.m;
    const field = Object.keys(m).filter((k) => typeof m[k] === 'string').sort((a, b) => (m[b] as string).length - (m[a] as string).length)[0]!;
    m[field] = (m[field] as string).slice(0, 16);
    const states = new Map(cp.states);
    states.set('htm', JSON.stringify(snap));
    expect(store.saveCheckpoint(states, cp.uptoInputSeq)).toBe(true);
    store.close();

    const warns: Array<Record<string, unknown>> = [];
    const log: Logger = { ...silentLogger, warn: ((o: unknown) => void warns.push(o as Record<string, unknown>)) as Logger['warn'] };
    const second = open(log);
    second.feed(120, 200);
    await second.app.stop(2_000);
    const text = await second.metrics.text();
    expect(text).toMatch(new RegExp(`^${METRIC_NAMES.detectorResets}\\{rule="htm"\\} 1$`, 'm'));
    expect(text).toMatch(new RegExp(`^${METRIC_NAMES.rejected}\\{reason="detector-error"\\} 0$`, 'm'));
    const resetLines = warns.filter((w) => w.rule === 'htm' && typeof w.group === 'string');
    expect(resetLines).toHaveLength(1);
    expect(resetLines[0]!.group).toContain('d1');
  });

  it('logs the resets of many groups a line each for the first ten, then at 100, 1000, ...: every one counted', async () => {
    const devices = Array.from({ length: 250 }, (_, i) => `dev${i}`);
    const first = open(silentLogger, devices);
    first.feed(0, 30);
    await first.app.stop(2_000);

    // Every zscore group's state replaced by a string (a hand edit, another version's layout).
    const store = openStore(dir, { log: silentLogger, clock: { now: () => Date.now() }, ttlMs: 0 });
    const cp = store.loadCheckpoint();
    const snap = JSON.parse(cp.states.get('zs')!) as { groups: Array<[string, { d: unknown }]> };
    expect(snap.groups).toHaveLength(250);
    for (const [, g] of snap.groups) g.d = 'damaged';
    const states = new Map(cp.states);
    states.set('zs', JSON.stringify(snap));
    expect(store.saveCheckpoint(states, cp.uptoInputSeq)).toBe(true);
    store.close();

    const warns: Array<{ o: Record<string, unknown>; msg: string }> = [];
    const log: Logger = { ...silentLogger, warn: ((o: unknown, msg: string) => void warns.push({ o: o as Record<string, unknown>, msg })) as Logger['warn'] };
    const second = open(log, devices);
    second.feed(30, 32);
    await second.app.stop(2_000);
    const text = await second.metrics.text();
    expect(text).toMatch(new RegExp(`^${METRIC_NAMES.detectorResets}\\{rule="zs"\\} 250$`, 'm'));
    const lines = warns.filter((w) => w.o.rule === 'zs');
    // Ten lines naming a group, then one at 100 resets (docs/contract.md section 3).
    expect(lines.filter((w) => typeof w.o.group === 'string')).toHaveLength(10);
    expect(lines.map((w) => w.o.resets).filter((n) => n !== undefined)).toEqual([10, 100]);
    expect(lines).toHaveLength(11);
  });
});
