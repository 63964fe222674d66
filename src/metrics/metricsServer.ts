import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Metrics } from './metrics.js';

/** What `/healthz` reports: `ok` false answers 503 (the container HEALTHCHECK then fails). */
export interface HealthStatus {
  readonly ok: boolean;
  readonly detail?: unknown;
}

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /** TCP port; 0 picks a free one (tests). `EDDY_METRICS_PORT=0` means the caller does not start the server at all. */
  readonly port: number;
  /**
   * Listen address. Default: Node's unspecified address (`::` with IPv4 mapped, or `0.0.0.0`), so
   * both the in-container HEALTHCHECK on localhost and IoT Edge's metrics-collector on the module
   * network reach it.
   */
  readonly host?: string;
  readonly metrics: Metrics;
  /** Called on every `/healthz`; must be cheap and must not throw (a throw answers 503). */
  readonly health: () => HealthStatus;
  /**
   * The live page's data, served as JSON at `/api/state` (docs/contract.md section 10, "Live page"). Without it
   * neither the page nor `/api/state` is served. Whatever it returns is public to anyone who reaches
   * the port: it must never hold a connection string, key or password.
   */
  readonly state?: () => unknown;
}

const require = createRequire(import.meta.url);
/** The page's own files: `page/` at the package root (beside `dist/` and `src/`, listed in package.json `files`). */
const PAGE_DIR = fileURLToPath(new URL('../../page/', import.meta.url));
/**
 * Every file the page server answers, by URL path: a fixed list, so that no request path ever
 * becomes a file path (no traversal to check).
 */
const PAGE_FILES: ReadonlyMap<string, { file: string; type: string }> = new Map([
  ['/', { file: `${PAGE_DIR}index.html`, type: 'text/html; charset=utf-8' }],
  ['/page.js', { file: `${PAGE_DIR}page.js`, type: 'text/javascript; charset=utf-8' }],
  ['/page.css', { file: `${PAGE_DIR}page.css`, type: 'text/css; charset=utf-8' }],
  // uPlot (MIT, a runtime dependency) draws the charts, served from node_modules as published.
  ['/uPlot.iife.min.js', { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' }],
  ['/uPlot.min.css', { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' }],
]);
/**
 * The page loads its scripts and styles from this server only, and runs no inline script: a
 * group value shown on it is device data, and must never run as code.
 */
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:";

/** A running metrics server. */
export interface MetricsServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stops listening and closes open keep-alive connections. */
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

async function handle(req: IncomingMessage, res: ServerResponse, options: MetricsServerOptions): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const page = options.state === undefined ? undefined : PAGE_FILES.get(path);
  const api = options.state !== undefined && path === '/api/state';
  if (path !== '/metrics' && path !== '/healthz' && page === undefined && !api) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  }
  if (page !== undefined) {
    let body: string;
    try {
      body = await readFile(page.file, 'utf8');
    } catch (err) {
      return send(res, 500, 'text/plain; charset=utf-8', `page file missing: ${(err as Error).message}\n`);
    }
    res.setHeader('Content-Security-Policy', PAGE_CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    return send(res, 200, page.type, body);
  }
  if (api) {
    try {
      return send(res, 200, 'application/json; charset=utf-8', JSON.stringify(options.state!()));
    } catch (err) {
      return send(res, 500, 'text/plain; charset=utf-8', `state failed: ${(err as Error).message}\n`);
    }
  }
  if (path === '/metrics') {
    try {
      return send(res, 200, options.metrics.contentType, await options.metrics.text());
    } catch (err) {
      return send(res, 500, 'text/plain; charset=utf-8', `metrics failed: ${(err as Error).message}\n`);
    }
  }
  let status: HealthStatus;
  try {
    status = options.health();
  } catch (err) {
    status = { ok: false, detail: `health check threw: ${(err as Error).message}` };
  }
  const body = JSON.stringify({ status: status.ok ? 'ok' : 'unavailable', ...(status.detail !== undefined ? { detail: status.detail } : {}) });
  return send(res, status.ok ? 200 : 503, 'application/json; charset=utf-8', body);
}

/**
 * Serves `GET /metrics` (Prometheus text, the format IoT Edge's metrics-collector scrapes),
 * `GET /healthz` (200 or 503 JSON) and, given `state`, the read-only live page at `/` with its data at
 * `GET /api/state`, with node:http. Resolves once listening; rejects if the port is taken.
 */
export function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    void handle(req, res, options);
  });
  // A scrape is tiny; a client that holds a socket open must not keep the module from stopping.
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: options.port, ...(options.host !== undefined ? { host: options.host } : {}) }, () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}
