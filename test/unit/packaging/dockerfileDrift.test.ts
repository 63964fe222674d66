import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileParser } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { parseDockerfile } from './dockerfileParser.js';
import { ARCHES, type Arch } from './packagingChecks.js';

/**
 * The six Dockerfiles are one recipe: Dockerfile.amd64 is the reference, and the others may differ from
 * it only where they must. Allowed, and nothing else:
 *   - the comment lines before the first FROM (which platform, which `docker build` line, why that Node);
 *   - the base image's architecture and Node major in FROM (`<arch>/node:<major>-...`; arm32v7 stays on
 *     22, docs/deploy.md says why);
 *   - in a `.debug` variant: `EXPOSE 9229` and the CMD that starts the inspector.
 * Every instruction, flag and comment inside the stages must otherwise match, so a fix made in one file
 * (like npm_config_nodedir) cannot be forgotten in another.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (p: string): string => readFileSync(join(root, p), 'utf8');
const DEBUG_CMD = JSON.stringify(['node', '--inspect=0.0.0.0:9229', 'dist/main.js']);
const RELEASE_CMD = JSON.stringify(['node', 'dist/main.js']);

/** The Dockerfile with its allowed differences taken out: one line per instruction or stage comment. */
function recipe(text: string, arch: Arch, debug: boolean): string[] {
  const df = parseDockerfile(text);
  const firstFrom = df.instructions.find((i) => i.keyword === 'FROM')?.line ?? Infinity;
  const lines: Array<[number, string]> = DockerfileParser.parse(text)
    .getComments()
    .map((c) => [c.getRange().start.line + 1, `# ${c.getContent()}`] as [number, string])
    .filter(([line]) => line > firstFrom);
  for (const ins of df.instructions) {
    const flags = Object.entries(ins.flags).map(([k, v]) => `--${k}=${v} `).join('');
    let args = ins.exec ? JSON.stringify(ins.exec) : ins.args;
    if (ins.keyword === 'FROM') args = args.replace(new RegExp(`^${arch}/node:\\d+-`), 'ARCH/node:MAJOR-');
    if (debug && ins.keyword === 'EXPOSE' && args === '9229') continue;
    if (debug && ins.keyword === 'CMD' && args === DEBUG_CMD) args = RELEASE_CMD;
    lines.push([ins.line, `${ins.keyword} ${flags}${args}`]);
  }
  return lines.sort((a, b) => a[0] - b[0]).map(([, l]) => l);
}

const reference = recipe(read('Dockerfile.amd64'), 'amd64', false);
const variants = ARCHES.flatMap((arch) => [false, true].map((debug) => ({ arch, debug, file: `Dockerfile.${arch}${debug ? '.debug' : ''}` })));

describe('the Dockerfiles differ from Dockerfile.amd64 only where they must', () => {
  it('the reference recipe has its stages, the nodedir fix and the CMD (the comparison has something to compare)', () => {
    expect(reference.filter((l) => l.startsWith('FROM ARCH/node:MAJOR-'))).toHaveLength(2);
    expect(reference).toContain('ENV npm_config_nodedir=/usr/local');
    expect(reference).toContain(`CMD ${RELEASE_CMD}`);
    expect(reference.filter((l) => l.startsWith('#')).length).toBeGreaterThan(5);
  });

  it.each(variants)('$file', ({ arch, debug, file }) => {
    expect(recipe(read(file), arch, debug)).toEqual(reference);
  });

  const arm64 = read('Dockerfile.arm64v8');
  const armDebug = read('Dockerfile.arm32v7.debug');
  const drifted: Array<[string, string, Arch, boolean]> = [
    ['a fix left out of one file', arm64.replace('ENV npm_config_nodedir=/usr/local\n', ''), 'arm64v8', false],
    ['an extra step in one file', arm64.replace('USER node', 'RUN true\nUSER node'), 'arm64v8', false],
    ['a comment edited in one stage only', arm64.replace('# Code stays owned by root', '# Code is owned by root'), 'arm64v8', false],
    ['another arch in one FROM', arm64.replace('FROM arm64v8/node:26-bookworm-slim AS runtime', 'FROM amd64/node:26-bookworm-slim AS runtime'), 'arm64v8', false],
    ['a changed HEALTHCHECK flag', arm64.replace('--interval=30s', '--interval=60s'), 'arm64v8', false],
    ['a debug variant that also changes the user', armDebug.replace('USER node', 'USER root'), 'arm32v7', true],
    ['a debug CMD other than the inspector', armDebug.replace('--inspect=0.0.0.0:9229', '--inspect-brk=0.0.0.0:9229'), 'arm32v7', true],
  ];
  it.each(drifted)('catches %s', (_name, text, arch, debug) => {
    expect(recipe(text, arch, debug)).not.toEqual(reference);
  });

  it('lets the header comments and the Node major differ', () => {
    const header = arm64.replace('# eddy for linux/arm64v8.', '# eddy for linux/arm64v8 (64-bit ARM).').replaceAll('arm64v8/node:26-', 'arm64v8/node:22-');
    expect(recipe(header, 'arm64v8', false)).toEqual(reference);
  });
});
