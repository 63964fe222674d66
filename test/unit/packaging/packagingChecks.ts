/**
 * Static checks of the packaging files (docs/deploy.md; no Docker engine here). Each returns a list of problems instead of
 * throwing, so the tests can show both that our files pass and that a bad file is caught.
 */
import { copyPaths, findStage, keyValues, resolveIn, type Dockerfile, type Instruction, type Stage } from './dockerfileParser.js';

/** Architectures of IoT Edge's Tier 1 Linux platforms, as the IoT Edge tooling names them. */
export const ARCHES = ['amd64', 'arm32v7', 'arm64v8'] as const;
export type Arch = (typeof ARCHES)[number];

/** Docker platform string of each architecture, for `FROM --platform=`. */
const PLATFORM: Record<Arch, string> = { amd64: 'linux/amd64', arm32v7: 'linux/arm/v7', arm64v8: 'linux/arm64' };

/**
 * Node majors that are LTS and supported as of this release (Nov 2026): 22 (maintenance to
 * 2027-04-30), 24 (maintenance since 2026-10-20) and 26 (active LTS since 2026-10-28, to April 2029).
 * 20 reached end of life on 2026-04-30, so 20 and older are ruled out. Update this list on purpose when
 * a new LTS ships.
 */
export const CURRENT_NODE_LTS = [22, 24, 26] as const;

/** What the runtime stage must ship for `node dist/main.js` to start (absolute paths in the image). */
export const RUNTIME_PATHS = ['/app/dist', '/app/rules', '/app/page', '/app/node_modules', '/app/package.json'] as const;

const SECRET_NAME = /pass(word)?|secret|token|api_?key|access_?key|private|credential|connection_?string|sas/i;
const SECRET_VALUE = /SharedAccessSignature|SharedAccessKey=|AccountKey=|sig=|-----BEGIN/i;
const BUILD_TOOLS = /(?:^|\s)(python3?|make|g\+\+|gcc|build-essential)(?=\s|$)/;
const INSTALL_ALL = /\bnpm\s+(ci|install|i)\b(?![^&;|]*--(omit=dev|production|only=prod))/;
const PRUNE_DEV = /\bnpm\s+(prune|ci|install)\b[^&;|]*--(omit=dev|production|only=prod)/;

/** The image reference split into its namespace (arch prefix), repository, tag. */
export function splitImage(image: string): { namespace?: string; repo: string; tag: string } {
  const [name = '', tag = 'latest'] = image.split('@')[0]!.split(':');
  const parts = name.split('/');
  const repo = parts.pop()!;
  return parts.length ? { namespace: parts.join('/'), repo, tag } : { repo, tag };
}

/** The base image of a stage is Node for `arch`, a current LTS major, on Debian: problems if not. */
export function checkNodeBase(stage: Stage, arch: Arch, wantSlim: boolean): string[] {
  const problems: string[] = [];
  const { namespace, repo, tag } = splitImage(stage.image);
  const archOk = namespace === arch || (stage.platform === PLATFORM[arch] && (namespace === undefined || namespace === 'library'));
  if (repo !== 'node') problems.push(`stage ${stage.index}: base ${stage.image} is not the official node image`);
  if (!archOk) problems.push(`stage ${stage.index}: base ${stage.image} is not pinned to ${arch} (use ${arch}/node:... or --platform=${PLATFORM[arch]})`);
  const major = Number(/^(\d+)/.exec(tag)?.[1]);
  if (!(CURRENT_NODE_LTS as readonly number[]).includes(major)) problems.push(`stage ${stage.index}: node ${tag} is not a current LTS (${CURRENT_NODE_LTS.join(', ')})`);
  if (wantSlim && !/-slim$/.test(tag)) problems.push(`stage ${stage.index}: runtime base ${tag} is not a -slim image`);
  return problems;
}

function isRoot(user: string): boolean {
  const name = user.split(':')[0]!.trim();
  return name === '' || name === 'root' || name === '0';
}

/** Every WORKDIR-resolved COPY of a stage: where from, which sources, to where. */
export function stageCopies(stage: Stage): Array<{ ins: Instruction; from?: string; sources: string[]; dest: string }> {
  let workdir = '/';
  const out: Array<{ ins: Instruction; from?: string; sources: string[]; dest: string }> = [];
  for (const ins of stage.instructions) {
    if (ins.keyword === 'WORKDIR') workdir = resolveIn(workdir, ins.args);
    if (ins.keyword !== 'COPY' && ins.keyword !== 'ADD') continue;
    const { sources, dest } = copyPaths(ins);
    const abs = resolveIn(workdir, dest);
    out.push({ ins, sources, dest: abs, ...(ins.flags.from ? { from: ins.flags.from } : {}) });
  }
  return out;
}

/** One source of a COPY and the absolute path it lands at in the image. */
export interface CopiedPath {
  /** `--from` stage (or image), absent for the build context. */
  readonly from?: string;
  /** The source path, absolute in the `from` stage's filesystem or relative to the build context. */
  readonly source: string;
  readonly target: string;
}

/**
 * Where each COPY source lands (Dockerfile reference): a directory source copies its *contents* into
 * dest, so `COPY dist ./` would not make /app/dist; a file goes to dest/basename when dest ends with
 * `/`, else it is renamed to dest. Without the source filesystem at hand, a basename with a dot is
 * taken for a file and anything else for a directory, which holds for every path we copy.
 */
export function copiedPaths(stage: Stage): CopiedPath[] {
  const out: CopiedPath[] = [];
  for (const c of stageCopies(stage)) {
    const rawDest = copyPaths(c.ins).dest;
    const destIsDir = rawDest.endsWith('/') || rawDest === '.' || c.sources.length > 1;
    for (const source of c.sources) {
      const base = source.replace(/\/$/, '').split('/').pop()!;
      const isFile = base.includes('.') && !source.endsWith('/');
      const target = isFile && destIsDir ? resolveIn(c.dest, base) : c.dest;
      out.push({ source, target, ...(c.from ? { from: c.from } : {}) });
    }
  }
  return out;
}

/** The stage's last WORKDIR, resolved (Docker's default is `/`). */
export function stageWorkdir(stage: Stage): string {
  let workdir = '/';
  for (const ins of stage.instructions) if (ins.keyword === 'WORKDIR') workdir = resolveIn(workdir, ins.args);
  return workdir;
}

/** Absolute paths the COPYs of a stage create. */
export function copiedTargets(stage: Stage): string[] {
  return copiedPaths(stage).map((c) => c.target);
}

export interface DockerfileExpectations {
  readonly arch: Arch;
  readonly debug: boolean;
  /** The better-sqlite3 version package-lock.json installs (the addon the image compiles). */
  readonly betterSqlite3: string;
}

/**
 * Whether better-sqlite3 `version` survives on Node `major`. Node 24.19 backported a change to
 * `node::ObjectWrap` (node_object_wrap.h) without the cleanup-hook registry behind it: an addon
 * compiled against those headers, as `npm ci` does from source, aborts the process with
 * `Assertion failed: (env) != nullptr` in `RemoveEnvironmentCleanupHook` when a Statement is
 * finalised outside a JS context (nodejs/node#65446). better-sqlite3 up to 12.x derives Statement
 * from `node::ObjectWrap`; 13 moved to node-addon-api but crashes on Node 20. Measured here
 * with 12.11.1 built from source, `npm test`: Node 24.21, 10 of 706 tests failed (the
 * module aborting right after "rules applied"); Node 22.23 and 26.12, all pass.
 */
export function sqliteAddonProblem(nodeMajor: number, betterSqlite3: string): string | undefined {
  const addonMajor = Number(/^(\d+)/.exec(betterSqlite3)?.[1]);
  if (addonMajor < 13 && nodeMajor === 24) {
    return `node ${nodeMajor} aborts better-sqlite3 ${betterSqlite3} when a statement is finalised outside a JS context (nodejs/node#65446); use node 26 (or 22) until better-sqlite3 13`;
  }
  return undefined;
}

/** All static rules for one of our Dockerfiles. An empty list means it passes. */
export function checkDockerfile(df: Dockerfile, want: DockerfileExpectations): string[] {
  const problems = [...df.errors];
  if (df.stages.length < 2) return [...problems, `multi-stage build expected, found ${df.stages.length} stage(s)`];
  const runtime = df.stages[df.stages.length - 1]!;

  for (const ins of df.instructions) {
    if (ins.keyword === 'ADD' && copyPaths(ins).sources.some((s) => /^(https?|git|ssh):|^git@/i.test(s))) {
      problems.push(`line ${ins.line}: ADD from a URL (not reproducible, not verified); download in a RUN with a checksum instead`);
    }
    if (ins.keyword === 'ENV' || ins.keyword === 'ARG') {
      for (const [k, v] of keyValues(ins)) {
        if (SECRET_NAME.test(k) || SECRET_VALUE.test(v)) problems.push(`line ${ins.line}: ${ins.keyword} ${k} looks like a secret; image layers are readable by anyone who pulls them`);
      }
    }
  }

  // Base images: each stage for the same arch and Node major (the native addon is built for one ABI).
  for (const s of df.stages) problems.push(...checkNodeBase(s, want.arch, s === runtime));
  const majors = new Set(df.stages.map((s) => /^(\d+)/.exec(splitImage(s.image).tag)?.[1]));
  if (majors.size > 1) problems.push(`stages use different Node majors (${[...majors].join(', ')}); better-sqlite3 is compiled for one ABI`);
  for (const m of majors) {
    const p = sqliteAddonProblem(Number(m), want.betterSqlite3);
    if (p) problems.push(p);
  }

  // Runtime: production dependencies only, no compilers.
  for (const ins of runtime.instructions.filter((i) => i.keyword === 'RUN')) {
    if (INSTALL_ALL.test(ins.args)) problems.push(`line ${ins.line}: runtime stage installs dev dependencies (${ins.args})`);
    if (/apt-get\s+install|apk\s+add/.test(ins.args) && BUILD_TOOLS.test(ins.args)) problems.push(`line ${ins.line}: runtime stage installs build tools`);
  }
  const copies = stageCopies(runtime);
  const nm = copies.find((c) => c.dest === '/app/node_modules' || c.sources.some((s) => /node_modules\/?$/.test(s)));
  if (nm?.from !== undefined) {
    const src = findStage(df, nm.from);
    const runs = src?.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args) ?? [];
    const lastFull = runs.map((r) => INSTALL_ALL.test(r)).lastIndexOf(true);
    const lastProd = runs.map((r) => PRUNE_DEV.test(r)).lastIndexOf(true);
    if (!src) problems.push(`node_modules copied from unknown stage ${nm.from}`);
    else if (lastProd < 0 || lastProd < lastFull) problems.push(`node_modules come from stage ${nm.from} without a later npm prune/ci --omit=dev`);
  } else if (nm && !nm.from) {
    problems.push('node_modules copied from the build context (host binaries for another CPU/ABI)');
  }
  // node-gyp fetches Node's headers from nodejs.org unless told where they are; the official image has
  // them under /usr/local (include/node), so the build needs only the npm registry and a Debian mirror.
  for (const s of df.stages) {
    let nodedir: string | undefined;
    for (const ins of s.instructions) {
      if (ins.keyword === 'ENV') for (const [k, v] of keyValues(ins)) if (k.toLowerCase() === 'npm_config_nodedir') nodedir = v;
      if (ins.keyword !== 'RUN' || !/\bnpm\s+(ci|install|i|rebuild)\b/.test(ins.args)) continue;
      const flag = /--nodedir[=\s]+(\S+)/.exec(ins.args)?.[1];
      if ((flag ?? nodedir) !== '/usr/local') {
        problems.push(`line ${ins.line}: npm may build native addons with headers downloaded from nodejs.org; set ENV npm_config_nodedir=/usr/local (the base image's headers) before it`);
      }
    }
  }
  const targets = copiedTargets(runtime);
  for (const p of RUNTIME_PATHS) if (!targets.includes(p)) problems.push(`runtime stage does not COPY ${p}`);

  // Non-root, data dir, health, port, command.
  const users = runtime.instructions.filter((i) => i.keyword === 'USER');
  const user = users.at(-1)?.args ?? '';
  if (isRoot(user)) problems.push(`final stage runs as ${user || 'root (no USER)'}`);
  const env = new Map(runtime.instructions.filter((i) => i.keyword === 'ENV').flatMap(keyValues));
  if (env.get('EDDY_DATA_DIR') !== '/app/data') problems.push('runtime ENV EDDY_DATA_DIR=/app/data missing');
  const userName = user.split(':')[0]!;
  const ownsData = runtime.instructions.some((i) => i.keyword === 'RUN' && new RegExp(`chown\\s+(-R\\s+)?${userName}(:\\S+)?\\s+[^&;]*?/app/data\\b`).test(i.args));
  if (!isRoot(user) && !ownsData) problems.push(`/app/data is not chowned to ${userName}`);
  const health = runtime.instructions.filter((i) => i.keyword === 'HEALTHCHECK').at(-1);
  const probe = health ? healthcheckCommand(health) : undefined;
  if (!probe) problems.push('no HEALTHCHECK CMD in the runtime stage');
  else if (probe[0] !== 'node' || !probe.join(' ').includes('localhost:9600/healthz')) problems.push(`HEALTHCHECK does not probe http://localhost:9600/healthz with node: ${probe.join(' ')}`);
  const exposed = runtime.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
  if (!exposed.some((p) => p === '9600' || p === '9600/tcp')) problems.push('EXPOSE 9600 missing');
  const cmd = runtime.instructions.filter((i) => i.keyword === 'CMD').at(-1)?.exec;
  const wantCmd = want.debug ? ['node', '--inspect=0.0.0.0:9229', 'dist/main.js'] : ['node', 'dist/main.js'];
  if (JSON.stringify(cmd) !== JSON.stringify(wantCmd)) problems.push(`CMD should be the exec form ${JSON.stringify(wantCmd)}, got ${JSON.stringify(cmd ?? null)}`);
  if (runtime.instructions.some((i) => i.keyword === 'VOLUME')) problems.push('VOLUME in the image creates an anonymous volume per container; bind one in createOptions instead');
  return problems;
}

/** The command of `HEALTHCHECK [options] CMD ...` as argv (exec form) or a `sh -c` argv. */
export function healthcheckCommand(ins: Instruction): string[] | undefined {
  const m = /^CMD\s+([\s\S]+)$/i.exec(ins.args);
  if (!m) return undefined;
  const body = m[1]!.trim();
  if (body.startsWith('[')) {
    try {
      const argv: unknown = JSON.parse(body);
      if (Array.isArray(argv) && argv.every((x) => typeof x === 'string')) return argv;
    } catch {
      /* falls through to shell form */
    }
  }
  return ['/bin/sh', '-c', body];
}

/** `.dockerignore` semantics for plain patterns: `*`, `**`, `?`, `!` exceptions, last match wins. */
export function dockerIgnored(patterns: readonly string[], path: string): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    const pat = (negate ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
    const rx = new RegExp(
      '^' +
        pat
          .split('**')
          .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
          .join('.*') +
        '(/.*)?$',
    );
    if (rx.test(path)) ignored = !negate;
  }
  return ignored;
}
