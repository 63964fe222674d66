import { describe, expect, it } from 'vitest';
import { MAX_FUTURE_TIMESTAMP_DEVICES, OTHER_DEVICES, EVENT_LAG_BUCKETS, METRIC_NAMES, createMetrics } from '../../../src/metrics/metrics.js';

/** The value of one sample line `name{labels} value` in Prometheus text, or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('Metrics', () => {
  it('exposes every fixed name with HELP and TYPE before any call', async () => {
    const text = await createMetrics({ processMetrics: false }).text();
    const types: Record<string, string> = {
      received: 'counter', rejected: 'counter', windowResults: 'counter', alerts: 'counter', outboxPending: 'gauge', outboxBytes: 'gauge', buildInfo: 'gauge', outboxDropped: 'counter', outboxOldestAge: 'gauge',
      upstreamSent: 'counter', upstreamFailures: 'counter', ruleGroups: 'gauge', groupsEvicted: 'counter', detectorResets: 'counter', eventLag: 'histogram',
      outboxCommits: 'counter', outboxRows: 'counter', outboxConflicts: 'counter', futureTimestamps: 'counter',
    };
    for (const [key, name] of Object.entries(METRIC_NAMES)) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} ${types[key]}`);
    }
  });

  it('received counts kept between scrapes add up in the counter, once each', async () => {
    const m = createMetrics({ processMetrics: false });
    m.received('telemetry', 2);
    expect(sample(await m.text(), 'eddy_messages_received_total', 'input="telemetry"')).toBe(2);
    expect(sample(await m.text(), 'eddy_messages_received_total', 'input="telemetry"')).toBe(2);
    m.received('telemetry');
    m.received('other', 3);
    const t = await m.text();
    expect(sample(t, 'eddy_messages_received_total', 'input="telemetry"')).toBe(3);
    expect(sample(t, 'eddy_messages_received_total', 'input="other"')).toBe(3);
    expect(m.snapshot().received).toBe(6);
  });

  it('scrape text carries labels and values after calls', async () => {
    const m = createMetrics({ processMetrics: false });
    m.received('telemetry');
    m.received('telemetry', 4);
    m.received('other');
    m.rejected('not-json');
    m.rejected('not-json');
    m.rejected('too-deep', 3);
    m.windowResults('machineTemp1m', 2);
    m.alert('tempSpike', 'raised');
    m.alert('tempSpike', 'cleared');
    m.alert('tempSpike', 'raised');
    m.outbox({ pending: 7, bytes: 2048 });
    m.upstreamSent(5);
    m.upstreamFailure();
    m.ruleGroups('machineTemp1m', 12);
    m.groupsEvicted('machineTemp1m', 2);
    m.eventLag(0.2);
    m.eventLag(120);
    m.eventLag(-3); // clock skew counts as 0
    const t = await m.text();
    expect(sample(t, 'eddy_messages_received_total', 'input="telemetry"')).toBe(5);
    expect(sample(t, 'eddy_messages_received_total', 'input="other"')).toBe(1);
    expect(sample(t, 'eddy_messages_rejected_total', 'reason="not-json"')).toBe(2);
    expect(sample(t, 'eddy_messages_rejected_total', 'reason="too-deep"')).toBe(3);
    expect(sample(t, 'eddy_window_results_total', 'rule="machineTemp1m"')).toBe(2);
    expect(sample(t, 'eddy_alerts_total', 'rule="tempSpike",state="raised"')).toBe(2);
    expect(sample(t, 'eddy_alerts_total', 'rule="tempSpike",state="cleared"')).toBe(1);
    expect(sample(t, 'eddy_outbox_pending')).toBe(7);
    expect(sample(t, 'eddy_outbox_bytes')).toBe(2048);
    expect(sample(t, 'eddy_upstream_sent_total')).toBe(5);
    expect(sample(t, 'eddy_upstream_failures_total')).toBe(1);
    expect(sample(t, 'eddy_rule_groups', 'rule="machineTemp1m"')).toBe(12);
    expect(sample(t, 'eddy_groups_evicted_total', 'rule="machineTemp1m"')).toBe(2);
    expect(sample(t, 'eddy_event_lag_seconds_count')).toBe(3);
    expect(sample(t, 'eddy_event_lag_seconds_sum')).toBeCloseTo(120.2);
    expect(sample(t, 'eddy_event_lag_seconds_bucket', 'le="0.01"')).toBe(1);
    expect(sample(t, 'eddy_event_lag_seconds_bucket', 'le="0.5"')).toBe(2);
    expect(sample(t, 'eddy_event_lag_seconds_bucket', 'le="+Inf"')).toBe(3);
    expect(EVENT_LAG_BUCKETS.at(-1)).toBe(86400);
  });

  it('reads the outbox write totals at scrape time and shows each gain once', async () => {
    const m = createMetrics({ processMetrics: false });
    const totals = { commits: { append: 0, remove: 0 }, appended: 0, removed: 0 };
    m.outboxWrites(() => totals);
    Object.assign(totals, { commits: { append: 2, remove: 1 }, appended: 20, removed: 12 });
    let t = await m.text();
    expect(sample(t, 'eddy_outbox_commits_total', 'op="append"')).toBe(2);
    expect(sample(t, 'eddy_outbox_commits_total', 'op="remove"')).toBe(1);
    expect(sample(t, 'eddy_outbox_rows_written_total', 'op="append"')).toBe(20);
    expect(sample(t, 'eddy_outbox_rows_written_total', 'op="remove"')).toBe(12);
    Object.assign(totals, { commits: { append: 2, remove: 4 }, removed: 20 });
    t = await m.text();
    expect(sample(t, 'eddy_outbox_commits_total', 'op="append"')).toBe(2);
    expect(sample(t, 'eddy_outbox_commits_total', 'op="remove"')).toBe(4);
    expect(sample(t, 'eddy_outbox_rows_written_total', 'op="append"')).toBe(20);
    expect(sample(t, 'eddy_outbox_rows_written_total', 'op="remove"')).toBe(20);
  });

  it('escapes label values that are data (rule ids, input names)', async () => {
    const m = createMetrics({ processMetrics: false });
    m.received('a"b\\c');
    expect(await m.text()).toContain('eddy_messages_received_total{input="a\\"b\\\\c"} 1');
  });

  it('ignores counts that would make prom-client throw (a bug must not end a stream)', async () => {
    const m = createMetrics({ processMetrics: false });
    expect(() => {
      m.received('x', -1);
      m.rejected('not-json', Number.NaN);
      m.upstreamSent(Number.POSITIVE_INFINITY);
      m.outbox({ pending: Number.NaN, bytes: 1 });
      m.eventLag(Number.NaN);
    }).not.toThrow();
    expect(m.snapshot()).toMatchObject({ received: 0, rejected: {} });
    expect(sample(await m.text(), 'eddy_upstream_sent_total')).toBe(0);
  });

  it('snapshot has the getStats shape of docs/contract.md section 7', () => {
    let now = 1_000_000;
    const m = createMetrics({ processMetrics: false, clock: { now: () => now } });
    m.received('telemetry', 10);
    m.rejected('not-json');
    m.rejected('bad-timestamp', 2);
    m.windowResults('r1', 3);
    m.alert('r2', 'raised');
    m.alert('r2', 'cleared');
    m.outbox({ pending: 4, bytes: 100 });
    m.futureTimestamp('dev-1');
    m.futureTimestamp('dev-1');
    m.futureTimestamp('dev-2');
    m.outboxConflicts();
    now += 65_500;
    expect(m.snapshot()).toEqual({
      received: 10,
      rejected: { 'not-json': 1, 'bad-timestamp': 2 },
      rules: { r1: { emitted: 3 }, r2: { emitted: 2 } },
      outbox: { pending: 4, bytes: 100 },
      uptimeSeconds: 65,
      futureTimestamps: { 'dev-1': 2, 'dev-2': 1 },
      outboxConflicts: 1,
    });
  });

  it('future-timestamp counts per device are bounded: devices past the bound share one key', () => {
    const m = createMetrics({ processMetrics: false });
    for (let i = 0; i < MAX_FUTURE_TIMESTAMP_DEVICES + 5; i++) m.futureTimestamp(`d${i}`);
    m.futureTimestamp('d0');
    const got = m.snapshot().futureTimestamps;
    expect(Object.keys(got)).toHaveLength(MAX_FUTURE_TIMESTAMP_DEVICES + 1);
    expect(got.d0).toBe(2);
    expect(got[OTHER_DEVICES]).toBe(5);
  });

  it('eddy_future_timestamps_total counts per device with the same bound as getStats', async () => {
    const m = createMetrics({ processMetrics: false });
    for (let i = 0; i < MAX_FUTURE_TIMESTAMP_DEVICES + 3; i++) m.futureTimestamp(`d${i}`);
    m.futureTimestamp('d7');
    const text = await m.text();
    expect(text).toMatch(/^eddy_future_timestamps_total\{device="d7"\} 2$/m);
    expect(text).toMatch(/^eddy_future_timestamps_total\{device="\(other devices\)"\} 3$/m);
    expect(text.match(/^eddy_future_timestamps_total\{/gm)).toHaveLength(MAX_FUTURE_TIMESTAMP_DEVICES + 1);
  });

  it('eddy_outbox_conflicts_total counts conflicting appends', async () => {
    const m = createMetrics({ processMetrics: false });
    m.outboxConflicts(2);
    expect(await m.text()).toMatch(/^eddy_outbox_conflicts_total 2$/m);
  });

  it('forgetRule drops a deleted rule from the scrape and the snapshot; using it again starts at 0', async () => {
    const m = createMetrics({ processMetrics: false });
    m.windowResults('gone', 5);
    m.alert('gone', 'raised');
    m.ruleGroups('gone', 3);
    m.windowResults('kept');
    m.forgetRule('gone');
    let t = await m.text();
    expect(t).not.toContain('rule="gone"');
    expect(sample(t, 'eddy_window_results_total', 'rule="kept"')).toBe(1);
    expect(m.snapshot().rules).toEqual({ kept: { emitted: 1 } });
    m.windowResults('gone');
    t = await m.text();
    expect(sample(t, 'eddy_window_results_total', 'rule="gone"')).toBe(1);
  });

  it('instances do not share state; process metrics carry the standard names', async () => {
    const a = createMetrics({ processMetrics: false });
    const b = createMetrics();
    a.received('telemetry', 3);
    expect(sample(await b.text(), 'eddy_messages_received_total', 'input="telemetry"')).toBeUndefined();
    const t = await b.text();
    expect(t).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(t).toMatch(/^process_resident_memory_bytes \d/m);
    expect(t).toMatch(/^nodejs_heap_size_used_bytes \d/m);
  });
});
