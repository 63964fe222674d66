/**
 * Azure Marketplace limits on an IoT Edge module offer's default deployment settings, and the
 * "least host access" rule ("Prepare IoT Edge module technical assets", https://learn.microsoft.com/partner-center/marketplace-offers/iot-edge-technical-asset).
 * Returns problems instead of throwing so the tests can show a bad template is caught.
 */

/** The part of a deployment template these checks read. */
export interface TemplateLike {
  modulesContent: Record<string, { 'properties.desired': Record<string, unknown> }>;
}

type ModuleSpec = { env?: Record<string, { value: unknown }>; settings: { image: string; createOptions?: unknown } };

export const LIMITS = { routes: 5, desiredProperties: 5, envVars: 5, valueChars: 512, nesting: 4, createOptionsChars: 512 } as const;

/** Depth of a JSON value counted in object levels under its name: `{a:{b:1}}` as the value of `x` is 2. */
export function nesting(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  return 1 + Math.max(0, ...Object.values(value as Record<string, unknown>).map(nesting));
}

function hasArray(value: unknown): boolean {
  if (Array.isArray(value)) return true;
  return value !== null && typeof value === 'object' && Object.values(value).some(hasArray);
}

/** The module's entry under $edgeAgent.modules. */
export function moduleOf(t: TemplateLike, name: string): ModuleSpec | undefined {
  const modules = t.modulesContent.$edgeAgent?.['properties.desired'].modules as Record<string, ModuleSpec> | undefined;
  return modules?.[name];
}

/** Route strings by name, whether written as a string or as `{route, priority, timeToLiveSecs}`. */
export function routesOf(t: TemplateLike): Record<string, string> {
  const routes = (t.modulesContent.$edgeHub?.['properties.desired'].routes ?? {}) as Record<string, string | { route: string }>;
  return Object.fromEntries(Object.entries(routes).map(([k, v]) => [k, typeof v === 'string' ? v : v.route]));
}

/** Docker HostConfig settings that give a container more than it should have. */
const SENSITIVE_HOST_PATHS = /^(\/|\/etc(\/.*)?|\/proc(\/.*)?|\/sys(\/.*)?|\/dev(\/.*)?|\/boot(\/.*)?|\/root(\/.*)?|\/var\/run\/docker\.sock|\/run\/docker\.sock|\/var\/lib\/docker(\/.*)?|\/var\/run\/iotedge(\/.*)?)$/;

/** Problems with a createOptions object: privileges, host namespaces, sensitive host paths. */
export function hostAccessProblems(createOptions: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const hc = (createOptions.HostConfig ?? {}) as Record<string, unknown>;
  if (hc.Privileged === true) problems.push('HostConfig.Privileged');
  for (const k of ['CapAdd', 'Devices', 'DeviceRequests', 'DeviceCgroupRules']) {
    if (Array.isArray(hc[k]) && (hc[k] as unknown[]).length > 0) problems.push(`HostConfig.${k}`);
  }
  for (const k of ['NetworkMode', 'PidMode', 'IpcMode', 'UTSMode', 'UsernsMode', 'CgroupnsMode']) {
    if (hc[k] === 'host') problems.push(`HostConfig.${k}=host`);
  }
  const sec = (hc.SecurityOpt ?? []) as string[];
  if (sec.some((s) => /unconfined|label[:=]disable/.test(s))) problems.push('HostConfig.SecurityOpt disables confinement');
  const binds = (hc.Binds ?? []) as string[];
  const mounts = ((hc.Mounts ?? []) as Array<{ Source?: string; Type?: string }>).map((m) => `${m.Source ?? ''}:`);
  for (const b of [...binds, ...mounts]) {
    const src = b.split(':')[0]!;
    if (src.startsWith('/') && SENSITIVE_HOST_PATHS.test(src.replace(/\/$/, '') || '/')) problems.push(`bind of host path ${src}`);
  }
  return problems;
}

/** Every Marketplace limit for `moduleName`'s default routes, twin, env and createOptions. */
export function marketplaceProblems(t: TemplateLike, moduleName: string): string[] {
  const problems: string[] = [];
  const routes = routesOf(t);
  if (Object.keys(routes).length > LIMITS.routes) problems.push(`${Object.keys(routes).length} default routes (max ${LIMITS.routes})`);
  for (const [name, r] of Object.entries(routes)) if (r.length > LIMITS.valueChars) problems.push(`route ${name} is ${r.length} chars`);

  const desired = t.modulesContent[moduleName]?.['properties.desired'] ?? {};
  const pairs = Object.entries(desired);
  if (pairs.length > LIMITS.desiredProperties) problems.push(`${pairs.length} desired properties (max ${LIMITS.desiredProperties})`);
  for (const [k, v] of pairs) {
    const json = JSON.stringify(v);
    if (json.length >= LIMITS.valueChars) problems.push(`desired property ${k} is ${json.length} chars`);
    if (hasArray(v)) problems.push(`desired property ${k} holds an array`);
    if (1 + nesting(v) > LIMITS.nesting) problems.push(`desired property ${k} nests ${1 + nesting(v)} levels`);
  }

  const mod = moduleOf(t, moduleName);
  if (!mod) return [...problems, `module ${moduleName} missing`];
  const env = Object.entries(mod.env ?? {});
  if (env.length > LIMITS.envVars) problems.push(`${env.length} environment variables (max ${LIMITS.envVars})`);
  for (const [k, { value }] of env) {
    if (k.length >= LIMITS.valueChars || String(value).length >= LIMITS.valueChars) problems.push(`environment variable ${k} too long`);
  }
  const co = mod.settings.createOptions;
  if (co !== undefined) {
    const obj = typeof co === 'string' ? (JSON.parse(co) as Record<string, unknown>) : (co as Record<string, unknown>);
    const json = JSON.stringify(obj);
    if (json.length >= LIMITS.createOptionsChars) problems.push(`createOptions is ${json.length} chars`);
    problems.push(...hostAccessProblems(obj).map((p) => `createOptions: ${p}`));
  }
  return problems;
}

/**
 * What iotedgedev's `genconfig` does to a template (iotedgedev/deploymenttemplate.py): drop
 * `$schema-template`, substitute image placeholders and stringify each createOptions, split into
 * `createOptions01..` chunks only past 512 chars (which the Marketplace limit rules out for ours).
 */
export function toManifest(template: Record<string, unknown>, image: (placeholder: string) => string): Record<string, unknown> {
  const copy = structuredClone(template) as Record<string, unknown> & TemplateLike;
  delete copy['$schema-template'];
  const agent = copy.modulesContent.$edgeAgent!['properties.desired'] as { systemModules: Record<string, ModuleSpec>; modules: Record<string, ModuleSpec> };
  for (const m of [...Object.values(agent.systemModules), ...Object.values(agent.modules)]) {
    m.settings.image = m.settings.image.replace(/\$\{[^}]+\}/g, image);
    if (m.settings.createOptions !== undefined && typeof m.settings.createOptions !== 'string') {
      m.settings.createOptions = JSON.stringify(m.settings.createOptions);
    }
  }
  return copy;
}
