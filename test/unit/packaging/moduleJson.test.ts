import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ARCHES } from './packagingChecks.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const readJson = <T>(p: string): T => JSON.parse(readFileSync(join(root, p), 'utf8')) as T;

interface ModuleJson {
  '$schema-version': string;
  image: { repository: string; tag: { version: string; platforms: Record<string, string> }; buildOptions: string[]; contextPath?: string };
  language: string;
}
const mod = readJson<ModuleJson>('module.json');

describe('module.json (IoT Edge tooling format)', () => {
  it('has the tooling fields and a registry placeholder a buyer must replace', () => {
    expect(mod['$schema-version']).toBe('0.0.1');
    // Marketplace convention for values only the customer knows: upper case in angle brackets.
    expect(mod.image.repository).toMatch(/^<[A-Z_]+>\/eddy$/);
    expect(Array.isArray(mod.image.buildOptions)).toBe(true);
    expect(typeof mod.language).toBe('string');
  });

  it("version is package.json's version, in the X.Y.Z form Marketplace tags need", () => {
    const pkg = readJson<{ version: string }>('package.json');
    expect(mod.image.tag.version).toBe(pkg.version);
    expect(mod.image.tag.version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('maps every Tier 1 architecture (and its .debug variant) to a Dockerfile that exists', () => {
    const platforms = mod.image.tag.platforms;
    expect(Object.keys(platforms).sort()).toEqual(ARCHES.flatMap((a) => [a, `${a}.debug`]).sort());
    for (const [platform, file] of Object.entries(platforms)) {
      expect(file).toBe(`./Dockerfile.${platform}`);
      expect(existsSync(join(root, mod.image.contextPath ?? '.', file)), file).toBe(true);
    }
  });
});
