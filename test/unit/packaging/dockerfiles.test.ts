import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DockerfileParser } from 'dockerfile-ast';
import { keyValues, parseDockerfile } from './dockerfileParser.js';
import { ARCHES, checkDockerfile, copiedPaths, dockerIgnored, healthcheckCommand, sqliteAddonProblem, type Arch } from './packagingChecks.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (p: string): string => readFileSync(join(root, p), 'utf8');
const ignore = read('.dockerignore').split('\n');
const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version: string }> };
const betterSqlite3 = lock.packages['node_modules/better-sqlite3']!.version;
const variants = ARCHES.flatMap((arch) => [false, true].map((debug) => ({ arch, debug, file: `Dockerfile.${arch}${debug ? '.debug' : ''}` })));

describe('parseDockerfile (dockerfile-ast underneath)', () => {
  it('joins continuations, drops comment lines inside them, reads flags, exec form, ENV pairs and stages', () => {
    const df = parseDockerfile(
      ['# top', 'ARG V=1', 'FROM --platform=linux/arm64 node:24-slim AS Build', 'RUN a \\', '# inside', '  && b', '', 'COPY --from=build --chown=node:node ["x y", "/dst/"]', 'ENV A=1 B="x y"', 'CMD ["node", "m.js"]'].join('\n'),
    );
    expect(df.errors).toEqual([]);
    expect(df.stages).toHaveLength(1);
    expect(df.stages[0]).toMatchObject({ name: 'build', image: 'node:24-slim', platform: 'linux/arm64' });
    const [run, copy, env, cmd] = df.stages[0]!.instructions;
    expect(run).toMatchObject({ keyword: 'RUN', line: 4 });
    expect(run!.args).not.toMatch(/inside/);
    expect(run!.words).toEqual(['a', '&&', 'b']);
    expect(copy).toMatchObject({ flags: { from: 'build', chown: 'node:node' }, exec: ['x y', '/dst/'] });
    expect(keyValues(env!)).toEqual([['A', '1'], ['B', 'x y']]);
    expect(cmd!.exec).toEqual(['node', 'm.js']);
  });

  it('keeps the spaces inside exec-form strings (dockerfile-ast getJSONStrings drops them, so JSON.parse reads them)', () => {
    const healthcheck = 'FROM a\nHEALTHCHECK --interval=30s \\\n  CMD ["node", "-e", "const u = 1; if (u) x()"]';
    const ins = parseDockerfile(healthcheck).stages[0]!.instructions[0]!;
    expect(ins.flags).toEqual({ interval: '30s' });
    expect(healthcheckCommand(ins)).toEqual(['node', '-e', 'const u = 1; if (u) x()']);
    const copy = DockerfileParser.parse('FROM a\nCOPY ["x y", "/d/"]').getCOPYs()[0]!;
    expect(copy.getJSONStrings().map((s) => s.getJSONValue())).toEqual(['xy', '/d/']);
  });

  it('reports instructions before FROM and a FROM it cannot read', () => {
    expect(parseDockerfile('RUN x\nFROM a').errors).toEqual(['line 1: RUN before the first FROM']);
    expect(parseDockerfile('FROM a AS').errors[0]).toMatch(/cannot read FROM/);
  });
});

describe.each(variants)('$file', ({ arch, debug, file }) => {
  const text = read(file);
  const df = parseDockerfile(text);

  it('passes every static rule (multi-stage, base per arch, non-root, prod deps, copies, health, CMD)', () => {
    expect(checkDockerfile(df, { arch, debug, betterSqlite3 })).toEqual([]);
  });

  it('copies from the build context only files that exist and that .dockerignore keeps', () => {
    const fromContext = df.stages.flatMap((s) => copiedPaths(s)).filter((c) => c.from === undefined);
    expect(fromContext.length).toBeGreaterThan(0);
    for (const c of fromContext) {
      expect(existsSync(join(root, c.source)), c.source).toBe(true);
      expect(dockerIgnored(ignore, c.source), `${c.source} is excluded by .dockerignore`).toBe(false);
    }
  });

  it('gives the build stage what `npm ci` and its prepare script (tsc -p tsconfig.build.json) read', () => {
    const build = df.stages[0]!;
    const copied = copiedPaths(build).filter((c) => c.from === undefined).map((c) => c.source);
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.prepare).toBe('npm run build');
    const buildConfig = /-p\s+(\S+)/.exec(pkg.scripts.build!)![1]!;
    const tsconfig = JSON.parse(read(buildConfig)) as { extends?: string; include: string[] };
    const needed = ['package.json', 'package-lock.json', buildConfig, ...(tsconfig.extends ? [tsconfig.extends.replace(/^\.\//, '')] : []), ...tsconfig.include];
    for (const n of needed) expect(copied, n).toContain(n);
    expect(build.instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args))).toBe(true);
    // better-sqlite3 falls back to node-gyp: python3, make and a C++ compiler in the build stage.
    expect(build.instructions.some((i) => i.keyword === 'RUN' && /python3/.test(i.args) && /\bmake\b/.test(i.args) && /g\+\+/.test(i.args))).toBe(true);
  });

  it('runs what package.json starts', () => {
    const pkg = JSON.parse(read('package.json')) as { main: string; scripts: { start: string } };
    const cmd = df.stages.at(-1)!.instructions.filter((i) => i.keyword === 'CMD').at(-1)!.exec!;
    expect(cmd.at(-1)).toBe(pkg.main);
    expect(pkg.scripts.start).toBe(`node ${pkg.main}`);
  });
});

describe('the checks catch a bad Dockerfile', () => {
  const good = read('Dockerfile.amd64');
  const check = (text: string, arch: Arch = 'amd64'): string[] => checkDockerfile(parseDockerfile(text), { arch, debug: false, betterSqlite3 });
  const cases: Array<[string, (t: string) => string, RegExp]> = [
    ['root user', (t) => t.replace('USER node', 'USER root'), /runs as root/],
    ['no USER', (t) => t.replace('USER node\n', ''), /runs as root \(no USER\)/],
    ['ADD from a URL', (t) => t.replace('COPY rules ./rules', 'ADD https://example.com/x.tgz /tmp/\nCOPY rules ./rules'), /ADD from a URL/],
    ['a connection string in ENV', (t) => t.replace('ENV NODE_ENV=production', 'ENV EdgeHubConnectionString="HostName=h;SharedAccessKey=abc" NODE_ENV=production'), /looks like a secret/],
    ['a token ARG', (t) => t.replace('FROM amd64/node:26-bookworm-slim AS runtime', 'FROM amd64/node:26-bookworm-slim AS runtime\nARG NPM_TOKEN'), /NPM_TOKEN looks like a secret/],
    ['node-gyp left to download headers from nodejs.org', (t) => t.replace(/ENV npm_config_nodedir=\/usr\/local\n/, ''), /npm_config_nodedir=\/usr\/local/],
    ['headers looked for where the base image has none', (t) => t.replace('npm_config_nodedir=/usr/local', 'npm_config_nodedir=/usr'), /headers downloaded from nodejs.org/],
    ['no prune', (t) => t.replace(/RUN npm prune[^\n]*\n/, ''), /without a later npm prune/],
    ['npm ci in the runtime stage', (t) => t.replace('USER node', 'RUN npm ci\nUSER node'), /installs dev dependencies/],
    ['compilers in the runtime stage', (t) => t.replace('USER node', 'RUN apt-get install -y g++\nUSER node'), /installs build tools/],
    ['Node 20', (t) => t.replaceAll('node:26-bookworm-slim', 'node:20-bookworm-slim'), /node 20-bookworm-slim is not a current LTS/],
    ['Node 10 like the template', (t) => t.replaceAll('amd64/node:26-bookworm-slim', 'amd64/node:10-slim'), /not a current LTS/],
    ['the wrong arch', (t) => t.replaceAll('amd64/node', 'arm64v8/node'), /not pinned to amd64/],
    ['a full runtime image', (t) => t.replace('node:26-bookworm-slim AS runtime', 'node:26-bookworm AS runtime'), /not a -slim image/],
    ['build and runtime on different majors', (t) => t.replace('node:26-bookworm-slim AS runtime', 'node:22-bookworm-slim AS runtime'), /different Node majors/],
    ['Node 24 with better-sqlite3 12', (t) => t.replaceAll('node:26-bookworm-slim', 'node:24-bookworm-slim'), /node 24 aborts better-sqlite3 12\.[\d.]+ .*nodejs\/node#65446/],
    ['dist contents spilled into /app', (t) => t.replace('/app/dist ./dist', '/app/dist ./'), /does not COPY \/app\/dist/],
    ['no rules', (t) => t.replace('COPY rules ./rules\n', ''), /does not COPY \/app\/rules/],
    ['host node_modules', (t) => t.replace('COPY --from=build /app/node_modules', 'COPY node_modules'), /from the build context/],
    ['data dir not owned', (t) => t.replace('&& chown node:node /app/data', ''), /not chowned to node/],
    ['no healthcheck', (t) => t.replace(/HEALTHCHECK[^\n]*\n[^\n]*\n/, ''), /no HEALTHCHECK/],
    ['curl healthcheck', (t) => t.replace(/HEALTHCHECK[^\n]*\n[^\n]*\n/, 'HEALTHCHECK CMD curl -f http://localhost:9600/healthz\n'), /with node/],
    ['shell-form CMD', (t) => t.replace('CMD ["node", "dist/main.js"]', 'CMD node dist/main.js'), /exec form/],
    ['single stage', () => 'FROM amd64/node:26-bookworm-slim\nUSER node\nCMD ["node", "dist/main.js"]', /multi-stage/],
    ['a VOLUME', (t) => t.replace('USER node', 'VOLUME /app/data\nUSER node'), /anonymous volume/],
  ];
  it.each(cases)('%s', (_name, mutate, expected) => {
    const bad = mutate(good);
    expect(bad).not.toBe(good);
    expect(check(bad).join('\n')).toMatch(expected);
  });

  it('ties the Node major to the better-sqlite3 major (nodejs/node#65446)', () => {
    expect(sqliteAddonProblem(22, '12.11.1')).toBeUndefined();
    expect(sqliteAddonProblem(24, '12.11.1')).toMatch(/node 24 aborts/);
    expect(sqliteAddonProblem(26, '12.11.1')).toBeUndefined();
    expect(sqliteAddonProblem(24, '13.0.3')).toBeUndefined();
    // Our Dockerfile on Node 24 passes once the addon no longer derives from node::ObjectWrap.
    expect(checkDockerfile(parseDockerfile(good.replaceAll('node:26-bookworm-slim', 'node:24-bookworm-slim')), { arch: 'amd64', debug: false, betterSqlite3: '13.0.3' })).toEqual([]);
  });

  it('accepts a pinned multi-arch tag with --platform', () => {
    const viaPlatform = good.replaceAll('FROM amd64/node:26-bookworm-slim', 'FROM --platform=linux/amd64 node:26-bookworm-slim');
    expect(check(viaPlatform)).toEqual([]);
    expect(check(viaPlatform.replaceAll('linux/amd64', 'linux/arm/v7'), 'arm32v7').join('\n')).not.toMatch(/not pinned/);
  });
});

describe('.dockerignore', () => {
  it('keeps host builds, secrets and data out of the build context', () => {
    for (const p of ['node_modules', 'node_modules/x/y.node', 'dist/main.js', 'data/outbox.sqlite', '.git/HEAD', '.env', 'test/unit/a.test.ts', 'README.md']) {
      expect(dockerIgnored(ignore, p), p).toBe(true);
    }
    for (const p of ['src/main.ts', 'rules/default.json', 'page/index.html', 'page/page.js', 'package.json', 'package-lock.json', 'tsconfig.build.json']) {
      expect(dockerIgnored(ignore, p), p).toBe(false);
    }
  });

  it('matcher: globs, ** and ! exceptions, last match wins', () => {
    expect(dockerIgnored(['*.md', '!KEEP.md'], 'KEEP.md')).toBe(false);
    expect(dockerIgnored(['*.md'], 'docs/a.md')).toBe(false); // root-relative, as Docker matches
    expect(dockerIgnored(['**/*.md'], 'docs/a.md')).toBe(true);
    expect(dockerIgnored(['dist'], 'distinct/x')).toBe(false);
  });
});
