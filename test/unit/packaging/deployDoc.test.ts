import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { moduleOf, routesOf, type TemplateLike } from './marketplaceLimits.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const deployDoc = readFileSync(join(root, 'docs/deploy.md'), 'utf8');
const template = JSON.parse(readFileSync(join(root, 'deployment.template.json'), 'utf8')) as TemplateLike;

/** Marketplace certification: every route, desired property, env var and createOptions setting documented. */
const section = (() => {
  const m = /<!-- deploy:start -->([\s\S]*)<!-- deploy:end -->/.exec(deployDoc);
  return m ? m[1]! : '';
})();

/** Dotted paths to every leaf of a JSON value, with the leaf value (array elements are leaves). */
function leaves(value: unknown, prefix = ''): Array<[string, unknown]> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
  }
  return Array.isArray(value) ? value.map((v) => [prefix, v] as [string, unknown]) : [[prefix, value]];
}

describe('docs/deploy.md, "Deploying on IoT Edge" section', () => {
  it('exists between the deploy markers', () => {
    expect(section).toMatch(/## Deploying on IoT Edge/);
  });

  it('documents every default route by name and text', () => {
    for (const [name, route] of Object.entries(routesOf(template))) {
      expect(section, name).toContain(`\`${name}\``);
      expect(section, route).toContain(route);
    }
  });

  it('documents every environment variable of every module with its value, and all of docs/contract.md section 2', () => {
    const modules = template.modulesContent.$edgeAgent!['properties.desired'].modules as Record<string, unknown>;
    for (const name of Object.keys(modules)) {
      for (const [k, { value }] of Object.entries(moduleOf(template, name)!.env ?? {})) {
        expect(section, k).toContain(`\`${k}\``);
        expect(section, `${k}=${String(value)}`).toContain(`\`${String(value)}\``);
      }
    }
    for (const k of ['EDDY_DATA_DIR', 'EDDY_LOG_LEVEL', 'EDDY_METRICS_PORT', 'EDDY_STORE_MAX_MB', 'EDDY_RULES_FILE']) expect(section).toContain(`\`${k}\``);
  });

  it('documents every default desired property by its dotted path and value', () => {
    const desired = template.modulesContent.eddy!['properties.desired'];
    for (const [path, value] of leaves(desired)) {
      expect(section, path).toContain(`\`${path}\``);
      expect(section, `${path}=${String(value)}`).toContain(`\`${String(value)}\``);
    }
  });

  it("documents every createOptions setting of eddy's and edgeHub's", () => {
    const eddy = moduleOf(template, 'eddy')!.settings.createOptions;
    for (const [path, value] of leaves(eddy)) {
      const top = path.split('.').slice(0, 2).join('.');
      expect(section, top).toContain(`\`${top}\``);
      expect(section, `${path}=${String(value)}`).toContain(`\`${String(value)}\``);
      for (const key of path.split('.').slice(2)) expect(section, key).toContain(`\`${key}\``);
    }
    expect(section).toContain(JSON.stringify(eddy).slice(0, 40)); // the literal block starts like the template's
    for (const port of ['5671', '8883', '443']) expect(section).toContain(port);
    expect(section).toContain('storeAndForwardConfiguration.timeToLiveSecs');
    const hub = template.modulesContent.$edgeHub!['properties.desired'] as { storeAndForwardConfiguration: { timeToLiveSecs: number } };
    expect(section).toContain(`\`${hub.storeAndForwardConfiguration.timeToLiveSecs}\``);
  });

  it('names the product info placeholder, the image tags and minimum hardware', () => {
    expect(section).toContain('PublisherId.OfferId.SkuId');
    expect(section).toMatch(/`latest`/);
    expect(section).toMatch(/X\.Y\.Z/);
    expect(section).toMatch(/### Minimum hardware/);
  });
});
