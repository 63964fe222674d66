/**
 * The built module's /metrics (docs/contract.md section 2, `EDDY_METRICS_PORT`) as a Prometheus
 * scraper sees it, over HTTP, after real inputs through the SDK and the edgeHub emulator: the event
 * lag of the inputs it accepted, build info, the standard process metrics, every rejection reason
 * and outbox drop series present.
 */
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { freePort } from '../../helpers/freePort.js';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { startModule, useEmulator, waitUntil } from './moduleProcess.js';
import { sensorBody } from './traffic.js';

const VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
const M = 'eddy-metrics';

function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('built module: /metrics', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('event lag of accepted inputs, build info, standard process metrics, reasons and drops at 0', { timeout: 60_000 }, async () => {
    const port = await freePort();
    await startModule(emu, M, { extra: { EDDY_METRICS_PORT: String(port), EDDY_LOG_LEVEL: 'info' } });
    // The default rules read timeCreated. Five inputs stamped an hour before they are sent, one whose
    // timestamp does not parse, one that is not JSON: only the five have a lag.
    const sentAt = Date.now();
    for (let i = 0; i < 5; i++) await emu.sendInput(M, 'telemetry', sensorBody(sentAt - 3_600_000 - i * 1000, 50, 1, 20, 25), { deviceId: 'lag-1' });
    await emu.sendInput(M, 'telemetry', { ...sensorBody(0, 50, 1, 20, 25), timeCreated: 'yesterday' }, { deviceId: 'lag-1' });
    await emu.sendInput(M, 'telemetry', Buffer.from('not json'), { deviceId: 'lag-1' });
    await waitUntil(() => emu.inputAcks.filter((a) => a.moduleId === M).length >= 7, 15_000, '7 input PUBACKs');

    const t = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(sample(t, 'eddy_event_lag_seconds_count')).toBe(5);
    const sum = sample(t, 'eddy_event_lag_seconds_sum')!;
    // 3600 + 3601 + ... + 3604 s plus the time the inputs took to arrive (well under a minute).
    expect(sum).toBeGreaterThanOrEqual(18_010);
    expect(sum).toBeLessThan(18_010 + 5 * 60);
    expect(sample(t, 'eddy_event_lag_seconds_bucket', 'le="3600"')).toBe(0);
    expect(sample(t, 'eddy_event_lag_seconds_bucket', 'le="21600"')).toBe(5);

    expect(sample(t, 'eddy_build_info', `version="${VERSION}",node="${process.version}"`)).toBe(1);
    expect(t).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(t).toMatch(/^nodejs_heap_size_used_bytes \d/m);
    expect(t).not.toMatch(/^eddy_(process|nodejs)_/m);
    expect(sample(t, 'eddy_messages_rejected_total', 'reason="not-json"')).toBe(1);
    expect(sample(t, 'eddy_messages_rejected_total', 'reason="too-deep"')).toBe(0);
    expect(sample(t, 'eddy_messages_rejected_total', 'reason="redelivered"')).toBe(0);
    expect(sample(t, 'eddy_outbox_dropped_total', 'reason="budget",kind="summary"')).toBe(0);
    expect(sample(t, 'eddy_outbox_dropped_total', 'reason="ttl",kind="alert"')).toBe(0);
    expect(sample(t, 'eddy_outbox_oldest_age_seconds')).toBeGreaterThanOrEqual(0);
  });
});
