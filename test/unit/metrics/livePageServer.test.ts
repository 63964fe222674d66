import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { startMetricsServer, type MetricsServer } from '../../../src/metrics/metricsServer.js';

/** The live page's routes of the metrics server (docs/contract.md section 10, "Live page"). */

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}
function get(port: number, p: string, method = 'GET'): Promise<Reply> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path: p, method }, (r) => {
      let body = '';
      r.on('data', (c: Buffer) => (body += c.toString()));
      r.on('end', () => res({ status: r.statusCode!, headers: r.headers, body }));
    });
    req.on('error', rej);
    req.end();
  });
}

const root = path.resolve(import.meta.dirname, '../../..');
const servers: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function start(state?: () => unknown): Promise<MetricsServer> {
  const server = await startMetricsServer({ port: 0, host: '127.0.0.1', metrics: createMetrics({ processMetrics: false }), health: () => ({ ok: true }), ...(state ? { state } : {}) });
  servers.push(server);
  return server;
}

describe('metrics server: the live page', () => {
  it('serves page/ and uPlot as files of the package, with a CSP that forbids inline and foreign scripts', async () => {
    const s = await start(() => ({ rules: [] }));
    const html = await get(s.port, '/');
    expect(html.status).toBe(200);
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(html.body).toBe(readFileSync(path.join(root, 'page/index.html'), 'utf8'));
    expect(html.headers['content-security-policy']).toMatch(/script-src 'self';/);
    expect(html.headers['content-security-policy']).not.toMatch(/unsafe-inline/);
    for (const [p, file] of [['/page.js', 'page/page.js'], ['/page.css', 'page/page.css']] as const) {
      expect((await get(s.port, p)).body).toBe(readFileSync(path.join(root, file), 'utf8'));
    }
    const uplot = createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js');
    const js = await get(s.port, '/uPlot.iife.min.js');
    expect([js.status, js.headers['content-type'], js.body === readFileSync(uplot, 'utf8')]).toEqual([200, 'text/javascript; charset=utf-8', true]);
    expect((await get(s.port, '/uPlot.min.css')).status).toBe(200);
  });

  it('/api/state is the state function as JSON, read anew on every request; a throw is a 500, not a crash', async () => {
    let n = 0;
    let fail = false;
    const s = await start(() => {
      if (fail) throw new Error('boom');
      return { n: ++n };
    });
    expect(JSON.parse((await get(s.port, '/api/state')).body)).toEqual({ n: 1 });
    expect(JSON.parse((await get(s.port, '/api/state?x')).body)).toEqual({ n: 2 });
    fail = true;
    const r = await get(s.port, '/api/state');
    expect([r.status, r.body]).toEqual([500, 'state failed: boom\n']);
    expect((await get(s.port, '/healthz')).status).toBe(200);
  });

  it('read-only: 405 for other methods; only the listed files, nothing else of the disk', async () => {
    const s = await start(() => ({}));
    expect((await get(s.port, '/api/state', 'POST')).status).toBe(405);
    expect((await get(s.port, '/', 'PUT')).status).toBe(405);
    for (const p of ['/index.html', '/../package.json', '/page/../package.json', '/%2e%2e/package.json', '/rules/default.json', '/dist/main.js']) {
      expect((await get(s.port, p)).status, p).toBe(404);
    }
  });

  it('without a state function neither the page nor /api/state is served', async () => {
    const s = await start();
    expect((await get(s.port, '/')).status).toBe(404);
    expect((await get(s.port, '/api/state')).status).toBe(404);
    expect((await get(s.port, '/metrics')).status).toBe(200);
  });
});
