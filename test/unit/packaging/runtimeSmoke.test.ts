import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { findStage, parseDockerfile, resolveIn } from './dockerfileParser.js';
import { copiedPaths, stageWorkdir } from './packagingChecks.js';

/**
 * Issue 7: the runtime stage's COPY list must be enough to run. No Docker here, so we rebuild the
 * image's /app from exactly those paths in a temp dir and start `node dist/main.js` in local mode.
 * node_modules holds only the production packages of package-lock.json (symlinked), so an import
 * of a dev dependency from dist/ fails here as it would in the image.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const hasDist = existsSync(join(root, 'dist/main.js'));
if (!hasDist) console.warn('runtimeSmoke: SKIPPED, dist/main.js does not exist yet (run `npm run build` first)');

/** Top-level packages npm would keep after `npm prune --omit=dev`, from package-lock.json v3. */
function productionPackages(): string[] {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([p, meta]) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(p) && meta.dev !== true)
    .map(([p]) => p.slice('node_modules/'.length))
    .filter((name) => existsSync(join(root, 'node_modules', name)));
}

/** Rebuilds the runtime stage's /app from its COPY list; returns the temp dir and what was placed. */
function assembleRuntime(dockerfile: string): { dir: string; placed: string[] } {
  const df = parseDockerfile(readFileSync(join(root, dockerfile), 'utf8'));
  const runtime = df.stages.at(-1)!;
  const dir = mkdtempSync(join(tmpdir(), 'eddy-runtime-'));
  const placed: string[] = [];
  for (const c of copiedPaths(runtime)) {
    expect(c.target.startsWith('/app/'), c.target).toBe(true);
    const dest = join(dir, c.target.slice('/app/'.length));
    let local: string;
    if (c.from === undefined) {
      local = join(root, c.source);
    } else {
      // The build stage copies the context into its WORKDIR and builds there: /app/x there is ./x here.
      const workdir = stageWorkdir(findStage(df, c.from)!);
      const abs = resolveIn(workdir, c.source);
      expect(abs.startsWith(`${workdir}/`), `${abs} is outside the build stage's ${workdir}`).toBe(true);
      local = join(root, abs.slice(workdir.length + 1));
    }
    if (local.endsWith('node_modules')) {
      mkdirSync(dest, { recursive: true });
      for (const name of productionPackages()) {
        mkdirSync(dirname(join(dest, name)), { recursive: true });
        symlinkSync(join(local, name), join(dest, name), 'dir');
      }
    } else {
      cpSync(local, dest, { recursive: true });
    }
    placed.push(c.target.slice('/app/'.length));
  }
  return { dir, placed };
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('runtime image file list', () => {
  it('production node_modules exclude the dev tools', () => {
    const prod = productionPackages();
    expect(prod).toContain('better-sqlite3');
    expect(prod).toContain('prom-client');
    for (const dev of ['typescript', 'vitest', 'tsx', 'eslint', 'aedes']) expect(prod).not.toContain(dev);
  });

  it.skipIf(!hasDist)('starts `node dist/main.js` in local mode from only the COPYed paths, prints summaries, exits 0 on SIGTERM', async () => {
    const { dir, placed } = assembleRuntime('Dockerfile.amd64');
    dirs.push(dir);
    expect(readdirSync(dir).sort()).toEqual(placed.sort());
    mkdirSync(join(dir, 'data')); // RUN mkdir -p /app/data in the image
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!/^(IOTEDGE_|EDDY_)|^EdgeHubConnectionString$|^NODE_OPTIONS$|^VITEST/.test(k)) env[k] = v;
    }
    Object.assign(env, { NODE_ENV: 'production', EDDY_DATA_DIR: join(dir, 'data'), EDDY_METRICS_PORT: '0', EDDY_LOG_LEVEL: 'info' });
    const child = spawn(process.execPath, ['dist/main.js'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));

    const summary = await new Promise<Record<string, unknown>>((res, rej) => {
      let buf = '';
      const timer = setTimeout(() => rej(new Error(`no summaries within 30 s; stderr:\n${stderr.slice(-2000)}`)), 30_000);
      child.stdout.on('data', (b: Buffer) => {
        buf += b.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const line of lines) {
          const msg = JSON.parse(line) as Record<string, unknown>; // every stdout line is JSON (CONTRACT §1)
          if (msg.output === 'summaries') {
            clearTimeout(timer);
            res(msg);
          }
        }
      });
      void exited.then(({ code }) => rej(new Error(`exited ${code} before any summary; stderr:\n${stderr.slice(-2000)}`)));
    });
    expect(summary).toHaveProperty('body');
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
    console.log(`runtimeSmoke: first summary received, RSS ${rss ? Math.round(Number(rss) / 1024) : '?'} MB`);
    child.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
