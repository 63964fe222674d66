import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * src/asa/chevrotainBundle.ts gives the query parser chevrotain from an esbuild bundle
 * (dist/chevrotain.cjs), because importing the package, an ES module graph of about 300 files with
 * lodash-es, grows an idle module's RSS by about 33 MB that V8 does not give back
 * (docs/performance.md, idle RSS). This checks, in a fresh Node process with a module-resolution
 * hook that records every module Node resolves, that the built parser and the module's rule path
 * never resolve a file of the chevrotain or lodash-es packages, and that a query still parses.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIST = `${ROOT}dist/`;

/** Registers a resolve hook that prints each resolved URL on stderr, then runs `body` (an ES module). */
function resolvedUrls(body: string): { urls: string[]; stdout: string; status: number | null; stderr: string } {
  // A synchronous write to fd 2: the hooks may run on their own thread, whose buffered
  // process.stderr writes can be lost when the process exits (seen on Node 26).
  const hook = `import { writeSync } from 'node:fs'; export async function resolve(s, c, next) { const r = await next(s, c); writeSync(2, 'RESOLVED ' + r.url + '\\n'); return r; }`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', body], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const urls = r.stderr.split('\n').filter((l) => l.startsWith('RESOLVED ')).map((l) => l.slice('RESOLVED '.length));
  return { urls, stdout: r.stdout, status: r.status, stderr: r.stderr };
}

describe('the query parser loads chevrotain from its bundle', () => {
  it('resolves no file of the chevrotain or lodash-es packages while importing the rule path and parsing a query', () => {
    expect(existsSync(`${DIST}chevrotain.cjs`), 'dist/chevrotain.cjs: run `npm run build`').toBe(true);
    const body = `
      await import(${JSON.stringify(`${DIST}rules/queryRules.js`)});
      await import(${JSON.stringify(`${DIST}app/reconciler.js`)});
      const { parseQuery } = await import(${JSON.stringify(`${DIST}asa/parseQuery.js`)});
      const r = parseQuery('SELECT deviceId, AVG(temperature) AS t INTO out FROM input TIMESTAMP BY ts GROUP BY deviceId, TumblingWindow(second, 10)');
      process.stdout.write(JSON.stringify({ ok: r.ok, statements: r.ok ? r.query.statements.length : r.errors }));
    `;
    const { urls, stdout, status, stderr } = resolvedUrls(body);
    expect(status, stderr).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ ok: true, statements: 1 });
    // The hook saw the rule path load (it would pass vacuously if it recorded nothing).
    expect(urls.some((u) => u.endsWith('/dist/asa/parseQuery.js'))).toBe(true);
    expect(urls.filter((u) => /\/node_modules\/(chevrotain|@chevrotain\/[^/]+|lodash-es)\//.test(u))).toEqual([]);
  });
});
