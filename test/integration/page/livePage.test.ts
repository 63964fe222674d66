// The functions passed to page.evaluate run in the browser: DOM types for them (src/ is built without; tsconfig.build.json).
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { freePort } from '../../helpers/freePort.js';
import { logs, startLocal, tempDir, until } from '../../helpers/localProcess.js';
import { startMosquitto } from '../../helpers/mosquitto.js';
import { type EdgeHubEmulator, startEdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { cleanupModules, spawnModule, upstreamOf, waitUntilRunning } from '../module/moduleProcess.js';
import { MINUTE, T0, sensorBody } from '../module/traffic.js';

/*
 * The live page (docs/contract.md section 10, "Live page") in a real headless Chromium (Debian's
 * `chromium`, installed by .ci/run) against real eddy processes: local mode with the simulated sensor,
 * IoT Edge mode through the edgeHub emulator with a connection string, and MQTT mode against a real
 * Mosquitto with a password. What the page shows is checked against what the module itself printed
 * (stdout outputs, the "rule rejected" log line), and the secrets the module was given must appear
 * nowhere on the page or in its data.
 */

/** EDDY_CHROMIUM, when set, is the only browser tried (and a wrong path counts as missing). */
const CHROMIUM = (process.env.EDDY_CHROMIUM ? [process.env.EDDY_CHROMIUM] : ['/usr/bin/chromium', '/usr/bin/chromium-browser']).find((p) => existsSync(p));
const CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false' && process.env.CI !== '0';
/** Screenshots of every run, for a reader (ignored by git; docs/live-page.png is one of them). */
const OUT = path.resolve(import.meta.dirname, '../../../test-output/live-page');

if (CHROMIUM === undefined && !CI) {
  console.warn(`test/integration/page: skipped, no Chromium at ${process.env.EDDY_CHROMIUM || '/usr/bin/chromium'} (Debian: apt-get install -y chromium; EDDY_CHROMIUM=path for another). Under CI=true this fails instead.`);
}

const base = { input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated' } as const;
const RULES = {
  tmax: { ...base, kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { tMax: 'max(machine.temperature)', n: 'count()' }, output: 'summaries' },
  // Raised at every device's first reading (SimulatedTemperatureSensor starts near 21 °C).
  hot: { ...base, kind: 'anomaly', value: 'machine.temperature', detector: { type: 'threshold', above: 0 }, output: 'alerts' },
  // Rejected alone (docs/contract.md section 6): the page must say so, with the module's reason.
  broken: { ...base, kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { x: 'nosuchfunction(machine.temperature)' }, output: 'summaries' },
};

/** What went wrong in the page: console errors, uncaught exceptions, failed or refused requests. */
interface Opened {
  page: Page;
  problems: string[];
}

describe.skipIf(CHROMIUM === undefined && !CI)('live page in headless Chromium (docs/contract.md "Live page")', () => {
  let browser: Browser;
  beforeAll(async () => {
    if (CHROMIUM === undefined) throw new Error(`CI=true and no Chromium at ${process.env.EDDY_CHROMIUM || '/usr/bin/chromium'}: .ci/run installs Debian's chromium package`);
    mkdirSync(OUT, { recursive: true });
    // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async (ctx) => {
    await cleanupModules(ctx.task.result?.state === 'fail');
  });

  async function open(url: string): Promise<Opened> {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 860 });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${(e as Error).message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
    });
    await page.goto(url, { waitUntil: 'load' });
    return { page, problems };
  }

  /** Everything the page and its data show: the rendered DOM, its text, and the raw `/api/state`. */
  async function everythingShown(page: Page, port: number): Promise<string> {
    const state = await (await fetch(`http://127.0.0.1:${port}/api/state`)).text();
    const html = await (await fetch(`http://127.0.0.1:${port}/`)).text();
    return [await page.content(), await page.evaluate(() => document.body.innerText), state, html].join('\n');
  }

  it('local mode: every rule with its status (the rejected one with its reason), counters and charts that update, no error', { timeout: 60_000 }, async () => {
    const dir = tempDir('eddy-page-data-');
    const file = path.join(tempDir('eddy-page-rules-'), 'rules.json');
    writeFileSync(file, JSON.stringify(RULES));
    const port = await freePort();
    const l = startLocal(dir, { EDDY_METRICS_PORT: String(port), EDDY_RULES_FILE: file });
    await until(() => logs(l).some((x) => x.msg.startsWith('eddy running in local mode')), 15_000, 'local mode running');
    const rejected = logs(l).find((x) => x.msg === 'rule rejected' && x.rule === 'broken');
    expect(rejected, 'the module logs the rejection').toBeDefined();
    const reason = rejected!.error as string;

    const { page, problems } = await open(`http://127.0.0.1:${port}/`);
    // Every rule card, a chart with at least two windows, and an alert: waited for, not slept on.
    await page.waitForFunction(
      () => {
        const card = (id: string): HTMLElement | null => document.querySelector(`article[data-rule-id="${id}"]`);
        const points = Number(card('tmax')?.querySelector<HTMLElement>('.chart')?.dataset.points ?? 0);
        return card('broken') !== null && card('hot')?.querySelector('.raised') !== null && points >= 2 && card('tmax')?.querySelector('canvas') !== null;
      },
      { timeout: 20_000, polling: 100 },
    );

    const shown = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('article.rule')].map((a) => ({
        id: a.dataset.ruleId,
        status: a.querySelector('.status')?.textContent,
        error: (a.querySelector('.error') as HTMLElement | null)?.hidden ? null : a.querySelector('.error')?.textContent,
        summary: a.querySelector('.recent li')?.textContent ?? null,
      })),
    );
    expect(shown.map((r) => r.id).sort()).toEqual(Object.keys(RULES).sort());
    const byId = new Map(shown.map((r) => [r.id, r]));
    expect(byId.get('tmax')!.status).toBe('active');
    expect(byId.get('hot')!.status).toBe('active');
    expect(byId.get('broken')!.status).toBe('rejected');
    expect(byId.get('broken')!.error).toContain(reason);
    expect(byId.get('tmax')!.error).toBeNull();

    // The newest summary shown is one the module printed on stdout: same device, window end, count, value.
    const m = /^(\d\d:\d\d:\d\d) (\S+) n=(\d+) tMax=(\S+) n=(\d+)/.exec(byId.get('tmax')!.summary ?? '');
    expect(m, `summary line "${byId.get('tmax')!.summary}"`).not.toBeNull();
    const printed = l.lines.filter((x) => x.output === 'summaries' && x.body.rule === 'tmax' && x.body.group.deviceId === m![2] && (x.body.window as { end: string }).end.slice(11, 19) === m![1]);
    expect(printed.length).toBeGreaterThan(0);
    const last = printed[printed.length - 1]!.body;
    expect(String(last.count)).toBe(m![3]);
    // Shown to two decimals (an integer as is): within half a hundredth.
    expect(Math.abs((last.values as { tMax: number }).tMax - Number(m![4]))).toBeLessThanOrEqual(0.005);

    // Values update: the received counter and the rule's emitted count both move.
    const before = await page.evaluate(() => ({ received: document.getElementById('received')!.textContent, emitted: document.querySelector<HTMLElement>('article[data-rule-id="tmax"]')!.dataset.emitted }));
    await page.waitForFunction(
      (b) => document.getElementById('received')!.textContent !== b.received && document.querySelector<HTMLElement>('article[data-rule-id="tmax"]')!.dataset.emitted !== b.emitted,
      { timeout: 10_000, polling: 100 },
      before,
    );
    const rates = await page.evaluate(() => Number(document.getElementById('inputs-rate')!.textContent));
    // The sensor sends 3 messages every 100 ms (src/main.ts startLocal): about 30 a second.
    expect(rates).toBeGreaterThan(10);
    expect(await page.evaluate(() => document.getElementById('link')!.textContent)).toBe('output: stdout');

    await page.screenshot({ path: path.join(OUT, 'local.png'), fullPage: true });

    // The rules file fixed and reloaded (docs/cli.md): the page follows without a reload of its own.
    writeFileSync(file, JSON.stringify({ ...RULES, broken: { ...RULES.broken, select: { x: 'avg(machine.temperature)' } } }));
    await page.waitForFunction(
      () => {
        const a = document.querySelector<HTMLElement>('article[data-rule-id="broken"]');
        return a?.dataset.status === 'active' && a.querySelector<HTMLElement>('.error')!.hidden && Number(a.querySelector<HTMLElement>('.chart')!.dataset.points) >= 1;
      },
      { timeout: 15_000, polling: 100 },
    );
    expect(await page.evaluate(() => document.getElementById('config-status')!.textContent)).toBe('applied');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('IoT Edge mode: edgeHub link shown, and the connection string\'s SharedAccessKey nowhere on the page', { timeout: 60_000 }, async () => {
    const emu: EdgeHubEmulator = await startEdgeHubEmulator();
    try {
      const port = await freePort();
      const env = emu.connectionStringEnv('eddy-page');
      const key = /SharedAccessKey=([^;]+)/.exec(env.EdgeHubConnectionString!)![1]!;
      const mp = spawnModule(env, { extra: { EDDY_METRICS_PORT: String(port), EDDY_LOG_LEVEL: 'info' } });
      await waitUntilRunning(emu, 'eddy-page', mp);
      const { page, problems } = await open(`http://127.0.0.1:${port}/`);
      await page.waitForFunction(() => document.getElementById('link')!.textContent === 'edgeHub: reachable' && document.querySelectorAll('article.rule').length > 0, { timeout: 15_000, polling: 100 });
      const shown = await everythingShown(page, port);
      expect(shown).toContain('machine1m'); // the default rules: the page is not empty
      for (const secret of [key, 'SharedAccessKey', 'SharedAccessSignature', env.EdgeHubConnectionString!]) expect(shown).not.toContain(secret);
      await page.screenshot({ path: path.join(OUT, 'edge.png'), fullPage: true });
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      await cleanupModules(false);
      await emu.close();
    }
  });

  it('IoT Edge mode: outbox depth and oldest age while edgeHub withholds an acknowledgement, the link through an outage', { timeout: 90_000 }, async () => {
    const emu: EdgeHubEmulator = await startEdgeHubEmulator();
    const M = 'eddy-page-outbox';
    try {
      const port = await freePort();
      const mp = spawnModule(emu.moduleEnv(M), { extra: { EDDY_METRICS_PORT: String(port), EDDY_LOG_LEVEL: 'info' } });
      await waitUntilRunning(emu, M, mp);
      const { page, problems } = await open(`http://127.0.0.1:${port}/`);
      await page.waitForFunction(() => document.getElementById('link')!.textContent === 'edgeHub: reachable', { timeout: 15_000, polling: 100 });
      // The first output's PUBACK is held 8 s: it and every output behind it wait in the outbox.
      emu.delayPubacks(8_000, 1);
      for (let i = 0; i <= 12; i++) await emu.sendInput(M, 'telemetry', sensorBody(T0 + i * (MINUTE / 3), 50, 1, 20, 25), { deviceId: 'd1' });
      await page.waitForFunction(
        () => Number(document.getElementById('outbox-pending')!.textContent) >= 2 && /^\d+ s$/.test(document.getElementById('outbox-age')!.textContent!) && Number(document.getElementById('outbox-age')!.textContent!.split(' ')[0]) >= 2,
        { timeout: 20_000, polling: 100 },
      );
      await page.screenshot({ path: path.join(OUT, 'edge-pending.png'), fullPage: true });
      // Once edgeHub acknowledges, the outbox drains to 0 and every summary is upstream.
      await page.waitForFunction(() => document.getElementById('outbox-pending')!.textContent === '0' && document.getElementById('outbox-age')!.textContent === '-', { timeout: 30_000, polling: 100 });
      // What the page counts as emitted is what reached edgeHub, once per messageId.
      // (Compared until they agree: the page shows the state of its last poll, up to a second old.)
      let emitted = -1;
      let delivered = -2;
      const end = Date.now() + 5_000;
      while (emitted !== delivered && Date.now() < end) {
        delivered = new Set(upstreamOf(emu, M).map((m) => m.messageId)).size;
        emitted = await page.evaluate(() => [...document.querySelectorAll<HTMLElement>('article.rule')].reduce((n, a) => n + Number(a.dataset.emitted), 0));
        if (emitted !== delivered) await new Promise((r) => setTimeout(r, 200));
      }
      expect(emitted).toBe(delivered);
      expect(emitted).toBeGreaterThanOrEqual(4); // machine1m and ambient1m, two closed minutes each at least

      const outage = emu.outage(4_000);
      await page.waitForFunction(() => document.getElementById('link')!.textContent === 'edgeHub: unreachable', { timeout: 10_000, polling: 100 });
      await outage;
      await page.waitForFunction(() => document.getElementById('link')!.textContent === 'edgeHub: reachable', { timeout: 30_000, polling: 100 });
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      await cleanupModules(false);
      await emu.close();
    }
  });

  it('MQTT mode: the broker password nowhere on the page', { timeout: 60_000 }, async () => {
    const broker = await startMosquitto();
    try {
      const port = await freePort();
      const l = startLocal(tempDir('eddy-page-mqtt-'), {
        EDDY_METRICS_PORT: String(port), EDDY_MQTT_URL: `mqtt://127.0.0.1:${broker.port}`,
        EDDY_MQTT_USERNAME: broker.username, EDDY_MQTT_PASSWORD: broker.password, EDDY_MQTT_CLIENT_ID: 'eddy-page-test',
      });
      await until(() => logs(l).some((x) => x.msg.includes('MQTT broker')), 15_000, 'MQTT mode running');
      const { page, problems } = await open(`http://127.0.0.1:${port}/`);
      await page.waitForFunction(() => document.getElementById('link')!.textContent === 'mqtt: reachable', { timeout: 15_000, polling: 100 });
      const shown = await everythingShown(page, port);
      expect(shown).toContain('machine1m');
      expect(shown).not.toContain(broker.password);
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      await broker.stop();
    }
  });
});
