import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { findStage, parseDockerfile, resolveIn } from './dockerfileParser.js';
import { copiedPaths, stageWorkdir } from './packagingChecks.js';

/**
 * docs/deploy.md "Building and checking the images": the runtime stage's COPY list must be enough to run. No Docker here, so we rebuild the
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

/** The build stage's clean-up of better-sqlite3's build leftovers: the paths it removes and the addon it keeps. */
function addonCleanup(dockerfileText: string): { removed: string[]; kept: string } | null {
  const m = /^RUN cd node_modules\/better-sqlite3 \\\n && rm -rf ([^\\\n]+) \\\n && test -f (\S+)$/m.exec(dockerfileText);
  return m ? { removed: m[1]!.trim().split(/\s+/), kept: m[2]! } : null;
}

/** Rebuilds the runtime stage's /app from its COPY list; returns the temp dir and what was placed. */
function assembleRuntime(dockerfile: string): { dir: string; placed: string[] } {
  const text = readFileSync(join(root, dockerfile), 'utf8');
  const cleanup = addonCleanup(text);
  const df = parseDockerfile(text);
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
        if (name === 'better-sqlite3' && cleanup !== null) {
          // A copy with the Dockerfile's clean-up applied: the addon must still load from what is left.
          cpSync(join(local, name), join(dest, name), { recursive: true });
          for (const r of cleanup.removed) rmSync(join(dest, name, r), { recursive: true, force: true });
          expect(existsSync(join(dest, name, cleanup.kept)), cleanup.kept).toBe(true);
        } else symlinkSync(join(local, name), join(dest, name), 'dir');
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

  it('every Dockerfile removes the same better-sqlite3 build leftovers, never the addon or its JavaScript', () => {
    const files = readdirSync(root).filter((f) => /^Dockerfile\./.test(f));
    expect(files).toHaveLength(6);
    const cleanups = files.map((f) => addonCleanup(readFileSync(join(root, f), 'utf8')));
    for (const [i, c] of cleanups.entries()) expect(c, files[i]).not.toBeNull();
    for (const c of cleanups) expect(c).toEqual(cleanups[0]);
    const { removed, kept } = cleanups[0]!;
    expect(kept).toBe('build/Release/better_sqlite3.node');
    for (const r of removed) {
      expect(r.startsWith('/') || r.includes('..'), r).toBe(false);
      expect(kept.startsWith(r.endsWith('/') ? r : `${r}/`) || kept === r, r).toBe(false);
      expect(['lib', 'package.json', 'build', 'build/Release', 'node_modules'].includes(r.replace(/\/$/, '')), r).toBe(false);
    }
  });

  it.skipIf(!hasDist)('starts `node dist/main.js` in local mode from only the COPYed paths (better-sqlite3 cleaned up as the build stage does), prints summaries, exits 0 on SIGTERM', async () => {
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

    const printed: string[] = [];
    const summary = await new Promise<Record<string, unknown>>((res, rej) => {
      let buf = '';
      const timer = setTimeout(() => rej(new Error(`no summaries within 30 s; stderr:\n${stderr.slice(-2000)}`)), 30_000);
      child.stdout.on('data', (b: Buffer) => {
        buf += b.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const line of lines) {
          printed.push(line);
          const msg = JSON.parse(line) as Record<string, unknown>; // every stdout line is JSON (docs/contract.md section 1)
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

    // scripts/smoke-image.sh judges the image's stdout with scripts/check-local-output.mjs: it accepts
    // what the module really prints, and rejects it once a summary's count or window is wrong.
    const checkOutput = (lines: string[]): { status: number | null; out: string } => {
      const file = join(dir, 'stdout.jsonl');
      writeFileSync(file, lines.join('\n') + '\n');
      const run = spawnSync(process.execPath, [join(root, 'scripts/check-local-output.mjs'), file, join(root, 'rules/default.json')], { encoding: 'utf8' });
      return { status: run.status, out: run.stdout + run.stderr };
    };
    const real = checkOutput(printed);
    expect(real.status, real.out).toBe(0);
    const first = JSON.parse(printed.find((l) => l.includes('"summaries"'))!) as { body: { count: number; window: { end: string } } };
    const mutate = (f: (m: typeof first) => void): string[] => {
      const m = structuredClone(first);
      f(m);
      return [...printed, JSON.stringify(m)];
    };
    expect(checkOutput(mutate((m) => (m.body.count = 0))).out).toMatch(/count 0 is not a positive integer/);
    expect(checkOutput(mutate((m) => (m.body.window.end = new Date(Date.parse(m.body.window.end) + 1000).toISOString()))).status).toBe(1);
    expect(checkOutput([...printed, 'not json']).status).toBe(1);
    expect(checkOutput([]).out).toMatch(/no summary/);
  }, 60_000);
});
