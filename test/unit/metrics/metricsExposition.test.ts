/**
 * The /metrics text as a Prometheus scraper and a stock Node.js dashboard read it, over a real HTTP
 * request to the metrics server: standard process names, build info, every rejection reason at 0,
 * outbox drops and the oldest record's age read at scrape time, and the event lag histogram.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { DropCounts } from '../../../src/contracts/store.js';
import { createMetrics, type MetricsOptions } from '../../../src/metrics/metrics.js';
import { startMetricsServer, type MetricsServer } from '../../../src/metrics/metricsServer.js';
import { compileRule } from '../../../src/rules/compileRule.js';
import { EventLagProbe } from '../../../src/rules/eventLagProbe.js';

function scrape(port: number): Promise<string> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics' }, (r) => {
      let body = '';
      r.on('data', (c: Buffer) => (body += c.toString()));
      r.on('end', () => (r.statusCode === 200 ? res(body) : rej(new Error(`status ${r.statusCode}`))));
    });
    req.on('error', rej);
    req.end();
  });
}

/** The value of the sample line `name{labels} value`, or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const servers: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function serve(options: MetricsOptions = {}) {
  const metrics = createMetrics(options);
  const server = await startMetricsServer({ port: 0, host: '127.0.0.1', metrics, health: () => ({ ok: true }) });
  servers.push(server);
  return { metrics, port: server.port };
}

describe('/metrics exposition', () => {
  it("process and Node.js metrics under prom-client's standard names, none under eddy_", async () => {
    const { port } = await serve();
    const t = await scrape(port);
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_version_info']) {
      expect(t, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect(t).toMatch(/^process_resident_memory_bytes [1-9]\d*$/m);
    expect(t).not.toMatch(/^eddy_(process|nodejs)_/m);
  });

  it('eddy_build_info{version,node} is 1', async () => {
    const { port } = await serve({ processMetrics: false, version: '1.2.3' });
    const t = await scrape(port);
    expect(t).toContain('# TYPE eddy_build_info gauge');
    expect(sample(t, 'eddy_build_info', `version="1.2.3",node="${process.version}"`)).toBe(1);
  });

  it('every rejection reason of docs/contract.md has its series at 0 before the first rejection', async () => {
    const { metrics, port } = await serve({ processMetrics: false });
    metrics.rejected('not-json', 2);
    const t = await scrape(port);
    // The reasons users alert on, written out here rather than read from the code's own list.
    for (const reason of ['not-utf8', 'not-object', 'too-large', 'too-deep', 'bad-timestamp', 'missing-field', 'not-a-number', 'too-late', 'expression-error', 'redelivered']) {
      expect(sample(t, 'eddy_messages_rejected_total', `reason="${reason}"`), reason).toBe(0);
    }
    expect(sample(t, 'eddy_messages_rejected_total', 'reason="not-json"')).toBe(2);
  });

  it('eddy_outbox_dropped_total{reason,kind} follows the store totals at each scrape; eddy_outbox_oldest_age_seconds is the age by the clock', async () => {
    let now = Date.UTC(2026, 10, 26, 3, 0, 0);
    const { metrics, port } = await serve({ processMetrics: false, clock: { now: () => now } });
    let t = await scrape(port);
    // Before the store is wired: the four series at 0, the age 0.
    for (const reason of ['budget', 'ttl']) for (const kind of ['summary', 'alert']) expect(sample(t, 'eddy_outbox_dropped_total', `reason="${reason}",kind="${kind}"`)).toBe(0);
    expect(sample(t, 'eddy_outbox_oldest_age_seconds')).toBe(0);

    let drops: DropCounts = { budget: { summary: 5, alert: 0 }, ttl: { summary: 1, alert: 2 } };
    let oldest: string | null = new Date(now - 90_500).toISOString();
    metrics.outboxState(() => ({ oldest, drops }));
    t = await scrape(port);
    expect(sample(t, 'eddy_outbox_dropped_total', 'reason="budget",kind="summary"')).toBe(5);
    expect(sample(t, 'eddy_outbox_dropped_total', 'reason="budget",kind="alert"')).toBe(0);
    expect(sample(t, 'eddy_outbox_dropped_total', 'reason="ttl",kind="summary"')).toBe(1);
    expect(sample(t, 'eddy_outbox_dropped_total', 'reason="ttl",kind="alert"')).toBe(2);
    expect(sample(t, 'eddy_outbox_oldest_age_seconds')).toBe(90.5);

    // Two scrapes without new drops add nothing; new drops add exactly the gain; time moves the age.
    t = await scrape(port);
    expect(sample(t, 'eddy_outbox_dropped_total', 'reason="budget",kind="summary"')).toBe(5);
    drops = { budget: { summary: 8, alert: 1 }, ttl: { summary: 1, alert: 2 } };
    now += 10_000;
    t = await scrape(port);
    expect(sample(t, 'eddy_outbox_dropped_total', 'reason="budget",kind="summary"')).toBe(8);
    expect(sample(t, 'eddy_outbox_dropped_total', 'reason="budget",kind="alert"')).toBe(1);
    expect(sample(t, 'eddy_outbox_oldest_age_seconds')).toBe(100.5);
    oldest = null;
    expect(sample(await scrape(port), 'eddy_outbox_oldest_age_seconds')).toBe(0);
  });

  it('eddy_event_lag_seconds: arrival minus the rule timestamp of each decoded event, each distinct path once; unparsable or absent times are not observed', async () => {
    const { metrics, port } = await serve({ processMetrics: false });
    const probe = new EventLagProbe((s) => metrics.eventLag(s));
    const rule = (id: string, doc: Record<string, unknown>) => {
      const c = compileRule(id, { kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' }, ...doc });
      if (!c.ok) throw new Error(c.error);
      return c.rule;
    };
    // Two rules share timeCreated, one reads t on another input, one uses arrival time.
    probe.setRules([rule('a', { timestamp: 'timeCreated' }), rule('b', { timestamp: 'timeCreated' }), rule('c', { input: 'other', timestamp: 't' }), rule('d', {})]);
    const arrival = Date.UTC(2026, 10, 26, 3, 0, 0);
    const ev = (input: string, body: Record<string, unknown>) => ({ input, body, deviceId: 'd', moduleId: 'm', arrival });
    probe.events([
      ev('telemetry', { timeCreated: '2026-11-26T02:59:58.0000000Z' }), // 2 s
      ev('telemetry', { timeCreated: arrival - 400_000 }), // 400 s, epoch ms
      ev('telemetry', { timeCreated: 'yesterday' }), // not a time: not observed
      ev('telemetry', { t: arrival - 1 }), // no timeCreated: not observed
      ev('other', { t: arrival + 5_000 }), // ahead of arrival: 0
      ev('unused', { timeCreated: arrival - 1 }), // no rule on this input
    ]);
    const t = await scrape(port);
    expect(t).toContain('# TYPE eddy_event_lag_seconds histogram');
    expect(sample(t, 'eddy_event_lag_seconds_count')).toBe(3);
    expect(sample(t, 'eddy_event_lag_seconds_sum')).toBe(402);
    expect(sample(t, 'eddy_event_lag_seconds_bucket', 'le="0.01"')).toBe(1);
    expect(sample(t, 'eddy_event_lag_seconds_bucket', 'le="5"')).toBe(2);
    expect(sample(t, 'eddy_event_lag_seconds_bucket', 'le="300"')).toBe(2);
    expect(sample(t, 'eddy_event_lag_seconds_bucket', 'le="900"')).toBe(3);
  });
});
