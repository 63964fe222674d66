import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RESET_LINES_PER_RULE, RejectLogger, ResetLogger, createLogger, redactSecrets } from '../../../src/metrics/logger.js';

function capture(level = 'info') {
  const lines: string[] = [];
  const logger = createLogger({ level, destination: { write: (l: string) => lines.push(l) } });
  return { logger, lines, json: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

// Made-up secrets in the real formats (IoT Hub connection string, SAS token, storage key).
const KEY = 'q8Pf3xZ1mN0bV7cR5tY2uI9oP4aS6dF8gH1jK3lM0n=';
const SIG = 'Xk2%2BabcDEF123%2Fghi%3D';
const CONN = `HostName=hub.azure-devices.net;DeviceId=dev1;ModuleId=eddy;SharedAccessKey=${KEY}`;
const SAS = `SharedAccessSignature sr=hub.azure-devices.net%2Fdevices%2Fdev1&sig=${SIG}&se=1790000000&skn=iothubowner`;
const SECRETS = [KEY, SIG, 'sig=Xk2'];

describe('createLogger', () => {
  it('writes pino JSON lines with level names, filtered by level', () => {
    const { logger, json } = capture('info');
    logger.debug('hidden');
    logger.info({ input: 'telemetry' }, 'started');
    logger.warn('careful');
    const out = json();
    expect(out.map((l) => [l.level, l.msg])).toEqual([['info', 'started'], ['warn', 'careful']]);
    expect(out[0]).toMatchObject({ module: 'eddy', input: 'telemetry' });
    expect(typeof out[0]!.time).toBe('string');
  });

  it('takes the level from EDDY_LOG_LEVEL when none is given', () => {
    const before = process.env.EDDY_LOG_LEVEL;
    process.env.EDDY_LOG_LEVEL = 'DEBUG';
    try {
      const lines: string[] = [];
      createLogger({ destination: { write: (l: string) => lines.push(l) } }).debug('shown');
      expect(lines).toHaveLength(1);
    } finally {
      if (before === undefined) delete process.env.EDDY_LOG_LEVEL;
      else process.env.EDDY_LOG_LEVEL = before;
    }
  });

  it('never writes a secret, in messages, interpolations, objects, errors or child bindings', () => {
    const { logger, lines } = capture('trace');
    logger.info(`connecting with ${CONN}`);
    logger.info('token %s expires', SAS);
    logger.warn({ connectionString: CONN, nested: { password: 'hunter2', options: { sharedAccessKey: KEY } } }, 'options');
    logger.error({ err: new Error(`mqtt.js returned Failure on first connection (Not authorized): ${SAS}`) }, 'connect failed');
    logger.info({ url: `https://acct.blob.core.windows.net/c/b?sv=2024-01-01&sig=${SIG}&se=x` }, 'upload');
    logger.info({ env: { EdgeHubConnectionString: CONN } }, 'environment');
    logger.child({ auth: SAS }).info('child');
    logger.info(`storage DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${KEY};EndpointSuffix=core.windows.net`);
    expect(lines).toHaveLength(8);
    const all = lines.join('');
    for (const s of [...SECRETS, 'hunter2']) expect(all).not.toContain(s);
    expect(all).toContain('[REDACTED]');
    // What is not secret stays readable.
    expect(all).toContain('HostName=hub.azure-devices.net;DeviceId=dev1');
    expect(all).toContain('connect failed');
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
  });

  it('writes to stderr by default, leaving stdout to output messages (local mode)', async () => {
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
    const script = `import { createLogger } from ${JSON.stringify(join(root, 'src/metrics/logger.ts'))}; createLogger({ level: 'info' }).info('on stderr ${CONN}');`;
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((res, rej) =>
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, timeout: 30_000 }, (err, stdout, stderr) => (err ? rej(err) : res({ stdout, stderr }))),
    );
    expect(stdout).toBe('');
    const line = JSON.parse(stderr.trim()) as { msg: string };
    expect(line.msg).toMatch(/^on stderr HostName=/);
    expect(stderr).not.toContain(KEY);
  });
});

describe('redactSecrets', () => {
  it.each([
    [`x ${CONN}`, `x HostName=hub.azure-devices.net;DeviceId=dev1;ModuleId=eddy;SharedAccessKey=[REDACTED]`],
    [SAS, 'SharedAccessSignature [REDACTED]'],
    [`"Authorization":"${SAS}"`, '"Authorization":"SharedAccessSignature [REDACTED]"'],
    [`a?sig=${SIG}&se=1`, 'a?sig=[REDACTED]&se=1'],
    ['SharedAccessSignature=sr%3Dx%26sig%3Dabc;HostName=h', 'SharedAccessSignature=[REDACTED];HostName=h'],
    ['nothing to see; signal=3 design=x', 'nothing to see; signal=3 design=x'],
  ])('%s', (input, expected) => {
    expect(redactSecrets(input)).toBe(expected);
    expect(redactSecrets(expected)).toBe(expected);
  });
});

describe('RejectLogger', () => {
  it('logs every rejection at debug with its reason, rule, detail and context (docs/contract.md section 3)', () => {
    const { logger, json } = capture('debug');
    const rl = new RejectLogger(logger);
    rl.log({ reason: 'not-json', detail: 'Unexpected token' }, { input: 'telemetry' });
    rl.log({ reason: 'not-json' });
    rl.log({ reason: 'bad-timestamp', rule: 'r1' });
    const out = json();
    expect(out.map((l) => [l.level, l.reason])).toEqual([['debug', 'not-json'], ['debug', 'not-json'], ['debug', 'bad-timestamp']]);
    expect(out[0]).toMatchObject({ input: 'telemetry', detail: 'Unexpected token', msg: 'input rejected: not-json' });
    expect(out[2]).toMatchObject({ rule: 'r1', msg: 'input rejected: bad-timestamp' });
  });

  it('writes nothing at info or above, however many rejections arrive', () => {
    const { logger, lines } = capture('info');
    const rl = new RejectLogger(logger);
    for (let i = 0; i < 10_000; i++) rl.log({ reason: 'too-large' });
    expect(lines).toEqual([]);
  });

  it('scrubs secrets that arrive inside rejected input', () => {
    const { logger, lines } = capture('debug');
    new RejectLogger(logger).log({ reason: 'not-json', detail: `body started with ${CONN}` });
    expect(lines.join('')).toContain('[REDACTED]');
    expect(lines.join('')).not.toContain(KEY);
  });
});

describe('ResetLogger', () => {
  it('logs the first ten resets of a rule one line each, then only at each power of ten, per rule', () => {
    const lines: Array<{ o: Record<string, unknown>; msg: string }> = [];
    const log = new ResetLogger({ warn: ((o: Record<string, unknown>, msg: string) => void lines.push({ o, msg })) as never });
    for (let i = 1; i <= 25_000; i++) log.log('a', `g${i}`, 'state is string, not object');
    for (let i = 1; i <= 3; i++) log.log('b', `h${i}`, 'state.n is null');
    const a = lines.filter((l) => l.o.rule === 'a');
    expect(a.slice(0, RESET_LINES_PER_RULE).map((l) => l.o.group)).toEqual(Array.from({ length: 10 }, (_, i) => `g${i + 1}`));
    expect(a.slice(RESET_LINES_PER_RULE).map((l) => l.o.resets)).toEqual([100, 1_000, 10_000]);
    expect(a[9]!.o.resets).toBe(10);
    expect(a[9]!.msg).toContain('eddy_detector_resets_total');
    expect(lines.filter((l) => l.o.rule === 'b').map((l) => l.o.group)).toEqual(['h1', 'h2', 'h3']);
    expect(lines).toHaveLength(13 + 3);
  });
});
