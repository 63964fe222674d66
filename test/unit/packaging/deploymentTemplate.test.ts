import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { hostAccessProblems, marketplaceProblems, moduleOf, nesting, routesOf, toManifest, type TemplateLike } from './marketplaceLimits.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const readJson = <T>(p: string): T => JSON.parse(readFileSync(join(root, p), 'utf8')) as T;
type Template = TemplateLike & Record<string, unknown>;
const template = readJson<Template>('deployment.template.json');
const schema = readJson<Record<string, unknown> & { definitions: Record<string, unknown> }>('test/fixtures/schemas/iotedge-deployment-template-4.0.subset.schema.json');

// The generated manifest (azure-iot-edge-deployment-2.0) wants createOptions as a JSON string.
const manifestSchema = structuredClone(schema);
manifestSchema.$id = 'https://eddy.local/schemas/iotedge-deployment-2.0.subset.schema.json';
manifestSchema.definitions.createOptions = { type: 'string' };
delete (manifestSchema.properties as Record<string, unknown>)['$schema-template'];

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validateTemplate = ajv.compile(schema);
const validateManifest = ajv.compile(manifestSchema);

/** docs/contract.md section 9, verbatim. */
const CONTRACT_ROUTES = [
  'FROM /messages/modules/SimulatedTemperatureSensor/outputs/temperatureOutput INTO BrokeredEndpoint("/modules/eddy/inputs/telemetry")',
  'FROM /messages/modules/eddy/outputs/* INTO $upstream',
];
const edgeAgent = (t: Template) => t.modulesContent.$edgeAgent!['properties.desired'] as {
  systemModules: Record<string, { settings: { image: string } }>;
  modules: Record<string, unknown>;
};

describe('deployment.template.json', () => {
  it('is a valid IoT Edge deployment template (4.0 schema subset)', () => {
    expect(validateTemplate(template), ajv.errorsText(validateTemplate.errors)).toBe(true);
  });

  it('becomes a valid deployment manifest (2.0 schema subset) with every createOptions under the 512-char twin value limit', () => {
    const manifest = toManifest(template, () => '<YOUR_REGISTRY>/eddy:0.1.0-amd64');
    expect(validateManifest(manifest), ajv.errorsText(validateManifest.errors)).toBe(true);
    const modules = Object.values(edgeAgent(manifest as Template).modules) as Array<{ settings: { createOptions: string } }>;
    for (const m of modules) expect(m.settings.createOptions.length).toBeLessThan(512);
  });

  it('runs edgeAgent and edgeHub 1.5, SimulatedTemperatureSensor and eddy', () => {
    const agent = edgeAgent(template);
    expect(agent.systemModules.edgeAgent!.settings.image).toBe('mcr.microsoft.com/azureiotedge-agent:1.5');
    expect(agent.systemModules.edgeHub!.settings.image).toBe('mcr.microsoft.com/azureiotedge-hub:1.5');
    expect(Object.keys(agent.modules).sort()).toEqual(['SimulatedTemperatureSensor', 'eddy']);
    expect(moduleOf(template, 'SimulatedTemperatureSensor')!.settings.image).toMatch(/^mcr\.microsoft\.com\/azureiotedge-simulated-temperature-sensor:1\.5$/);
  });

  it("points eddy's image at this folder's module.json (iotedgedev resolves ${MODULEDIR<path>})", () => {
    const image = moduleOf(template, 'eddy')!.settings.image;
    const m = /^\$\{MODULEDIR<(.+)>\}$/.exec(image);
    expect(m, image).not.toBeNull();
    expect(existsSync(join(root, m![1]!, 'module.json'))).toBe(true);
  });

  it('has exactly the default routes of docs/contract.md section 9 and a store-and-forward TTL', () => {
    expect(Object.values(routesOf(template)).sort()).toEqual([...CONTRACT_ROUTES].sort());
    const hub = template.modulesContent.$edgeHub!['properties.desired'] as { storeAndForwardConfiguration?: { timeToLiveSecs: number } };
    expect(hub.storeAndForwardConfiguration?.timeToLiveSecs).toBeGreaterThan(0);
  });

  it('keeps the Marketplace limits and asks for no privileges', () => {
    expect(marketplaceProblems(template, 'eddy')).toEqual([]);
  });

  it('binds a named volume (not a root-owned host folder) to /app/data, and sets only docs/contract.md section 2 variables', () => {
    const eddy = moduleOf(template, 'eddy')!;
    const hc = (eddy.settings.createOptions as { HostConfig: { Binds: string[] } }).HostConfig;
    const data = hc.Binds.find((b) => b.split(':')[1] === '/app/data');
    expect(data).toBeDefined();
    // A named volume starts as a copy of the image's /app/data, owned by the non-root user; a host
    // folder that Docker creates is root-owned and the module could not write its SQLite files.
    expect(data!.startsWith('/')).toBe(false);
    const contractEnv = ['EDDY_DATA_DIR', 'EDDY_LOG_LEVEL', 'EDDY_METRICS_PORT', 'EDDY_STORE_MAX_MB', 'EDDY_RULES_FILE'];
    for (const k of Object.keys(eddy.env ?? {})) expect(contractEnv).toContain(k);
    expect(eddy.env?.EDDY_DATA_DIR?.value).toBe('/app/data');
  });

  it('keeps the default rules in the image: the twin defaults hold no rules, only docs/contract.md section 6 settings', () => {
    const desired = template.modulesContent.eddy!['properties.desired'];
    expect(desired).not.toHaveProperty('rules');
    for (const k of Object.keys(desired)) expect(['store', 'upstream']).toContain(k);
    // No store.maxMB: the twin's value wins over EDDY_STORE_MAX_MB, so a default here would make the
    // env variable that a buyer sets in the portal do nothing.
    expect(desired).toEqual({ store: { ttlHours: 168 }, upstream: { maxMessagesPerSecond: 0 } });
  });
});

describe('the schema subset and the limits catch a bad template', () => {
  // The mutations poke arbitrary JSON paths of a copy; typing each path would only restate the template.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Loose = Template & { modulesContent: Record<string, any> };
  const mutate = (f: (t: Loose) => void): Template => {
    const t = structuredClone(template) as Loose;
    f(t);
    return t;
  };
  const schemaCases: Array<[string, Template]> = [
    ['no $edgeHub', mutate((t) => delete t.modulesContent.$edgeHub)],
    ['a bad restartPolicy', mutate((t) => (t.modulesContent.$edgeAgent['properties.desired'].modules.eddy.restartPolicy = 'sometimes'))],
    ['an unknown module field', mutate((t) => (t.modulesContent.$edgeAgent['properties.desired'].modules.eddy.privileged = true))],
    ['a route without INTO', mutate((t) => (t.modulesContent.$edgeHub['properties.desired'].routes.x = 'FROM /messages/* TO $upstream'))],
    ['a route name with a dot', mutate((t) => (t.modulesContent.$edgeHub['properties.desired'].routes['a.b'] = CONTRACT_ROUTES[1]))],
    ['an env name with a dot', mutate((t) => (t.modulesContent.$edgeAgent['properties.desired'].modules.eddy.env['a.b'] = { value: 1 }))],
    ['an env value that is an object', mutate((t) => (t.modulesContent.$edgeAgent['properties.desired'].modules.eddy.env.X = { value: {} }))],
    ['a module name with a space', mutate((t) => (t.modulesContent.$edgeAgent['properties.desired'].modules['my module'] = t.modulesContent.$edgeAgent['properties.desired'].modules.eddy))],
    ['no image', mutate((t) => delete t.modulesContent.$edgeAgent['properties.desired'].modules.eddy.settings.image)],
    ['a wrong template version', mutate((t) => (t['$schema-template'] = '2.0.0'))],
  ];
  it.each(schemaCases)('schema rejects %s', (_name, bad) => {
    expect(validateTemplate(bad)).toBe(false);
  });

  const limitCases: Array<[string, Template, RegExp]> = [
    ['six routes', mutate((t) => Object.assign(t.modulesContent.$edgeHub['properties.desired'].routes, { a: 'x', b: 'x', c: 'x', d: 'x' })), /6 default routes/],
    ['six desired properties', mutate((t) => Object.assign(t.modulesContent.eddy['properties.desired'], { a: 1, b: 2, c: 3, d: 4 })), /6 desired properties/],
    ['an array in the twin', mutate((t) => (t.modulesContent.eddy['properties.desired'].store.list = [1])), /holds an array/],
    ['nesting 5 deep', mutate((t) => (t.modulesContent.eddy['properties.desired'].store.a = { b: { c: { d: 1 } } })), /nests 5 levels/],
    ['a 512-char desired value', mutate((t) => (t.modulesContent.eddy['properties.desired'].store.note = 'x'.repeat(500))), /desired property store is \d+ chars/],
    ['six env vars', mutate((t) => Object.assign(t.modulesContent.$edgeAgent['properties.desired'].modules.eddy.env, { A: { value: 1 }, B: { value: 2 } })), /6 environment variables/],
    ['long createOptions', mutate((t) => (t.modulesContent.$edgeAgent['properties.desired'].modules.eddy.settings.createOptions.Labels = { x: 'y'.repeat(400) })), /createOptions is \d+ chars/],
    ['privileged', mutate((t) => (t.modulesContent.$edgeAgent['properties.desired'].modules.eddy.settings.createOptions.HostConfig.Privileged = true)), /Privileged/],
    ['the docker socket', mutate((t) => t.modulesContent.$edgeAgent['properties.desired'].modules.eddy.settings.createOptions.HostConfig.Binds.push('/var/run/docker.sock:/var/run/docker.sock')), /docker\.sock/],
  ];
  it.each(limitCases)('limits reject %s', (_name, bad, expected) => {
    expect(marketplaceProblems(bad, 'eddy').join('\n')).toMatch(expected);
  });

  it('host access rules', () => {
    expect(hostAccessProblems({ HostConfig: { NetworkMode: 'host', CapAdd: ['NET_ADMIN'], Devices: [{}], Binds: ['/:/host', '/srv/eddy:/app/data'] } })).toEqual([
      'HostConfig.CapAdd',
      'HostConfig.Devices',
      'HostConfig.NetworkMode=host',
      'bind of host path /',
    ]);
    expect(hostAccessProblems({ HostConfig: { SecurityOpt: ['seccomp=unconfined'] } })).toEqual(['HostConfig.SecurityOpt disables confinement']);
  });

  it('nesting counts object levels', () => {
    expect([nesting(1), nesting({}), nesting({ a: 1 }), nesting({ a: { b: { c: 1 } } })]).toEqual([0, 1, 1, 3]);
  });
});
