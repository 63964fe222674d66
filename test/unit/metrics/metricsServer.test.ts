import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { startMetricsServer, type HealthStatus, type MetricsServer } from '../../../src/metrics/metricsServer.js';
import { parseDockerfile } from '../packaging/dockerfileParser.js';
import { healthcheckCommand } from '../packaging/packagingChecks.js';

interface Reply {
  status: number;
  type: string | undefined;
  body: string;
}
function get(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (r) => {
      let body = '';
      r.on('data', (c: Buffer) => (body += c.toString()));
      r.on('end', () => res({ status: r.statusCode!, type: r.headers['content-type'], body }));
    });
    req.on('error', rej);
    req.end();
  });
}

const servers: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function start(health: () => HealthStatus) {
  const metrics = createMetrics({ processMetrics: false });
  const server = await startMetricsServer({ port: 0, host: '127.0.0.1', metrics, health });
  servers.push(server);
  return { metrics, server };
}

describe('startMetricsServer', () => {
  it('serves Prometheus text at /metrics with the current values', async () => {
    const { metrics, server } = await start(() => ({ ok: true }));
    expect(server.port).toBeGreaterThan(0);
    metrics.received('telemetry', 3);
    const r = await get(server.port, '/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.body).toContain('eddy_messages_received_total{input="telemetry"} 3');
    metrics.received('telemetry');
    expect((await get(server.port, '/metrics?x=1')).body).toContain('eddy_messages_received_total{input="telemetry"} 4');
  });

  it('/healthz answers 200 while healthy and 503 with the detail when not', async () => {
    let state: HealthStatus = { ok: true };
    const { server } = await start(() => state);
    let r = await get(server.port, '/healthz');
    expect([r.status, JSON.parse(r.body)]).toEqual([200, { status: 'ok' }]);
    state = { ok: false, detail: { pipeline: 'stopped' } };
    r = await get(server.port, '/healthz');
    expect(r.status).toBe(503);
    expect(r.type).toMatch(/^application\/json/);
    expect(JSON.parse(r.body)).toEqual({ status: 'unavailable', detail: { pipeline: 'stopped' } });
  });

  it('a throwing health function is a 503, not a crash', async () => {
    const { server } = await start(() => {
      throw new Error('boom');
    });
    const r = await get(server.port, '/healthz');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body).detail).toMatch(/boom/);
  });

  it('404 for other paths, 405 for other methods, HEAD without a body', async () => {
    const { server } = await start(() => ({ ok: true }));
    expect((await get(server.port, '/')).status).toBe(404);
    expect((await get(server.port, '/metrics', 'POST')).status).toBe(405);
    const head = await get(server.port, '/healthz', 'HEAD');
    expect([head.status, head.body]).toEqual([200, '']);
  });

  it('rejects when the port is taken, and close() frees it', async () => {
    const { server } = await start(() => ({ ok: true }));
    await expect(startMetricsServer({ port: server.port, host: '127.0.0.1', metrics: createMetrics({ processMetrics: false }), health: () => ({ ok: true }) })).rejects.toThrow(/EADDRINUSE/);
    const port = server.port;
    await servers.pop()!.close();
    const again = await startMetricsServer({ port, host: '127.0.0.1', metrics: createMetrics({ processMetrics: false }), health: () => ({ ok: true }) });
    servers.push(again);
    expect(again.port).toBe(port);
  });
});

describe("the image's HEALTHCHECK command against the real server", () => {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  const df = parseDockerfile(readFileSync(join(root, 'Dockerfile.amd64'), 'utf8'));
  const argv = healthcheckCommand(df.stages.at(-1)!.instructions.find((i) => i.keyword === 'HEALTHCHECK')!)!;
  const probe = (env: NodeJS.ProcessEnv): Promise<number> =>
    new Promise((res) => {
      // argv[0] is `node`: run it with this Node, as the image runs its own.
      execFile(process.execPath, argv.slice(1), { env: { PATH: process.env.PATH, ...env }, timeout: 20_000 }, (err) => res(err ? ((err as { code?: number }).code ?? -1) : 0));
    });

  it('exits 0 when /healthz is 200, 1 when it is 503 or nothing listens, 0 when metrics are off', async () => {
    let ok = true;
    // Default host, as main.ts will start it: the probe says "localhost", which may resolve to ::1 first.
    const server = await startMetricsServer({ port: 0, metrics: createMetrics({ processMetrics: false }), health: () => ({ ok }) });
    servers.push(server);
    expect(argv[0]).toBe('node');
    expect(await probe({ EDDY_METRICS_PORT: String(server.port) })).toBe(0);
    ok = false;
    expect(await probe({ EDDY_METRICS_PORT: String(server.port) })).toBe(1);
    await servers.pop()!.close();
    expect(await probe({ EDDY_METRICS_PORT: String(server.port) })).toBe(1);
    expect(await probe({ EDDY_METRICS_PORT: '0' })).toBe(0);
  });
});
