import { describe, expect, it } from 'vitest';
import type { OutputMessage, SummaryBody, AlertBody } from '../../../src/contracts/output.js';
import { LIVE_ALERTS_PER_RULE, LIVE_RATE_SECONDS, LIVE_SUMMARIES_PER_RULE, LiveView } from '../../../src/metrics/liveView.js';

function summary(rule: string, i: number): OutputMessage {
  const body: SummaryBody = { rule, group: { deviceId: 'd' }, window: { type: 'tumbling', start: `s${i}`, end: `e${i}` }, count: i, values: { v: i }, revision: 0 };
  return { id: `${rule}-${i}`, output: 'summaries', kind: 'summary', rule, groupKey: 'd', body, createdAt: i };
}
function alert(rule: string, i: number): OutputMessage {
  const body: AlertBody = { rule, group: { deviceId: 'd' }, state: 'raised', time: `t${i}`, value: i, score: 1, detector: 'threshold', kind: 'above' };
  return { id: `${rule}-a${i}`, output: 'alerts', kind: 'alert', rule, groupKey: 'd', body, createdAt: i };
}

describe('LiveView', () => {
  it('keeps the last summaries and alerts of each rule, oldest first, bounded', () => {
    const v = new LiveView();
    const n = LIVE_SUMMARIES_PER_RULE * 3 + 7;
    for (let i = 0; i < n; i++) v.record([summary('a', i), alert('a', i)]);
    v.record([summary('b', 0)]);
    const a = v.outputsOf('a');
    expect(a.summaries.map((s) => s.count)).toEqual(Array.from({ length: LIVE_SUMMARIES_PER_RULE }, (_, k) => n - LIVE_SUMMARIES_PER_RULE + k));
    expect(a.alerts.map((x) => x.value)).toEqual(Array.from({ length: LIVE_ALERTS_PER_RULE }, (_, k) => n - LIVE_ALERTS_PER_RULE + k));
    expect(v.outputsOf('b').summaries).toHaveLength(1);
    expect(v.outputsOf('none')).toEqual({ summaries: [], alerts: [] });
  });

  it('forgets rules no longer running', () => {
    const v = new LiveView();
    v.record([summary('a', 1), summary('b', 1)]);
    v.keepOnly(['b']);
    expect(v.outputsOf('a').summaries).toEqual([]);
    expect(v.outputsOf('b').summaries).toHaveLength(1);
  });

  it('rates: per second over the samples kept, a new key counted from 0, a reset not negative', () => {
    const v = new LiveView();
    expect(v.rates()).toEqual({ inputs: {}, outputs: {} });
    // 30 inputs and 3 outputs a second, one sample a second, for longer than the window kept.
    for (let s = 0; s <= LIVE_RATE_SECONDS + 5; s++) {
      const outputs = new Map([['r', 3 * s]]);
      if (s >= LIVE_RATE_SECONDS) outputs.set('late', 10);
      v.sample(s * 1000, new Map([['telemetry', 30 * s]]), outputs);
    }
    const r = v.rates();
    expect(r.inputs).toEqual({ telemetry: 30 });
    expect(r.outputs.r).toBe(3);
    expect(r.outputs.late).toBe(10 / LIVE_RATE_SECONDS);
    v.sample((LIVE_RATE_SECONDS + 6) * 1000, new Map([['telemetry', 0]]), new Map());
    expect(v.rates().inputs.telemetry).toBe(0);
  });
});
