import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { prng, T0, tempDir, writeRules } from '../durability/durabilityHarness.js';

/*
 * Black-box, the built `eddy run`: a device sends now and then a glitch reading of a huge magnitude
 * (1e200, -1.7e308, 1e154: valid JSON numbers, as a sensor's error code or an uninitialised double
 * gives them) among ordinary readings with real spikes. docs/contract.md section 3: bad input is
 * counted by reason, never lost and never thrown into the stream; `detector-error` when a detector
 * fails on an event. A reading whose square or sum of squares overflows a detector's state (zscore's
 * sums, `auto`'s variance and seasonal sums) is such an event: it is rejected for that rule alone,
 * and the rule's state stays as it was. Oracle: for those rules the alerts of the series with the
 * glitches equal, body for body, those of the same series without them (every later spike still
 * raises), and the run counts one `detector-error` per glitch and rule. A threshold rule (its state
 * holds no sum) raises on the first glitch as on any value above `above`, and so does an ewma rule
 * past its warm-up (docs/rules.md: "robust to the outliers it flags": it does not learn them).
 * (Before: one glitch left an Infinity in `auto`'s variance for good, and it raised no later spike; a
 * checkpoint wrote that Infinity as JSON null, so a restart scored otherwise than a run without one.)
 */

const CLI = fileURLToPath(new URL('../../../dist/cli/eddy.js', import.meta.url));
const GLITCHES = [1e200, -1.7e308, 1e154];

const anomaly = (detector: Record<string, unknown>): Record<string, unknown> => ({
  kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', value: 'v', detector, output: 'alerts',
});
const STATEFUL: Record<string, Record<string, unknown>> = {
  z: anomaly({ type: 'zscore', window: 30, threshold: 3 }),
  zs: anomaly({ type: 'zscore', window: 30, threshold: 3, season: '1h', seasonPeriods: 2 }),
  auto: anomaly({ type: 'auto', learnTime: '1m', threshold: 3 }),
};
/** Rules whose state takes no square of a flagged value: they raise on a glitch as on any spike. */
const RULES = { ...STATEFUL, thr: anomaly({ type: 'threshold', above: 50 }), ew: anomaly({ type: 'ewma', alpha: 0.1, threshold: 4 }) };

interface Alert { rule: string; state: string; time: string; value: number | null }

/** One reading a minute for about 3 hours (the seasonal zscore's hourly phases fill), a spike (60-100) now and then after the first hour. */
function series(): Array<{ ts: number; v: number }> {
  const rnd = prng(5);
  return Array.from({ length: 200 }, (_, i) => ({ ts: T0 + i * 60_000, v: i > 60 && rnd() < 0.06 ? 60 + Math.floor(rnd() * 41) : 15 + Math.floor(rnd() * 11) }));
}

function run(rulesFile: string, readings: ReadonlyArray<{ ts: number; v: number }>): { alerts: Alert[]; stderr: string } {
  const file = join(tempDir('eddy-huge-'), 'in.ndjson');
  writeFileSync(file, readings.map((r) => `{"$deviceId":"d1","ts":${r.ts},"v":${String(r.v)}}`).join('\n') + '\n');
  const out = spawnSync(process.execPath, [CLI, 'run', `--rules=${rulesFile}`, '--input', file], { encoding: 'utf8' });
  expect(out.status, out.stderr).toBe(0);
  const alerts = out.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { properties: Record<string, string>; body: Alert })
    .filter((o) => o.properties['eddy-kind'] === 'alert').map((o) => o.body);
  return { alerts, stderr: out.stderr };
}

describe('black box: a glitch reading of a huge magnitude', () => {
  it('is rejected by the detectors whose state it would overflow, which then alert as if it had not been sent', () => {
    const rulesFile = writeRules(RULES);
    const clean = series();
    // The glitches land after the warm-ups, between spikes, a minute's reading apart each.
    const glitched = clean.flatMap((r, i) => {
      const g = [70, 110, 150].indexOf(i);
      return g < 0 ? [r] : [{ ts: r.ts - 30_000, v: GLITCHES[g]! }, r];
    });
    const a = run(rulesFile, glitched);
    const b = run(rulesFile, clean);
    const of = (alerts: Alert[], rule: string): Alert[] => alerts.filter((x) => x.rule === rule);
    console.info(`[huge reading] ${Object.keys(RULES).map((r) => `${r} ${of(a.alerts, r).length} (clean ${of(b.alerts, r).length})`).join(', ')}\n${a.stderr}`);
    for (const rule of Object.keys(STATEFUL)) {
      expect(of(a.alerts, rule), rule).toEqual(of(b.alerts, rule));
      // Not vacuous: spikes after the first glitch raise.
      expect(of(b.alerts, rule).filter((x) => x.state === 'raised' && Date.parse(x.time) > T0 + 70 * 60_000).length, rule).toBeGreaterThan(0);
      expect(a.stderr, rule).toMatch(new RegExp(`rule ${rule}: .*detector-error ${GLITCHES.length}\\b`));
    }
    // The threshold and the ewma raise on the first glitch as on any spike, and reject nothing.
    for (const rule of ['thr', 'ew']) {
      expect(of(a.alerts, rule), rule).toContainEqual(expect.objectContaining({ state: 'raised', value: 1e200, time: new Date(T0 + 70 * 60_000 - 30_000).toISOString() }));
      expect(a.stderr, rule).not.toMatch(new RegExp(`rule ${rule}: .*detector-error`));
    }
  });
});
