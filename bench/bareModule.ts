/**
 * The bare module of the end-to-end baseline: the same SDK (`ModuleClient.fromEnvironment(Mqtt)`,
 * MQTT over TLS to edgeHub) that only receives inputs and counts them. What eddy adds on top of this
 * (decode, input log, rules, outbox, forwarder) is the cost the end-to-end ratio shows.
 *
 * BARE_SEND=<k>/<n>: the SDK floor for sending too. Besides counting, it sends k outputs
 * per n inputs on `summaries` (k > n: several per input, as eddy's 100-rule bench emits), spread evenly (bench/endToEnd.ts passes eddy's expected summaries
 * over its inputs per pass, e.g. 4800/30000), each shaped like one of eddy's summaries (src/io/edgehub:
 * JSON body of a summary's size, messageId, contentType, contentEncoding, `eddy-kind`, `eddy-rule`),
 * with the SDK's default retry policy replaced by NoRetry as eddy does. Nothing is stored or ordered:
 * this is what any module using this SDK pays to receive and send as many messages as eddy.
 *
 * BARE_QUIET=1: with eddy's quiet SDK loggers (see below), for either mode.
 */
import { randomUUID } from 'node:crypto';

// BARE_QUIET=1: eddy's no-op `debug` loggers for the SDK (src/io/edgehub/quietSdkDebug.ts), loaded
// before the SDK, so the floor is measured with what eddy does to the SDK too.
if (process.env.BARE_QUIET === '1') await import('../src/io/edgehub/quietSdkDebug.js');
const common = (await import('azure-iot-common')).default;
const device = (await import('azure-iot-device')).default;
const deviceMqtt = (await import('azure-iot-device-mqtt')).default;

const client = await device.ModuleClient.fromEnvironment(deviceMqtt.Mqtt);
let received = 0;
let sent = 0;
let failed = 0;
const echo = process.env.BARE_ECHO === '1';
const [sendK, sendN] = (process.env.BARE_SEND ?? '0/1').split('/').map((x) => Math.max(0, Math.floor(Number(x)) || 0)) as [number, number];
const sending = sendK > 0 && sendN > 0;
if (sending) client.setRetryPolicy(new common.NoRetry());
const WINDOW_MS = 60_000;

/** One summary-shaped output for the input that triggered it (the body eddy's machine1m rule would send). */
function summaryFor(body: Buffer, deviceId: string): InstanceType<typeof device.Message> {
  let temperature = 0;
  let t = 0;
  try {
    const b = JSON.parse(body.toString('utf8')) as { machine?: { temperature?: number; pressure?: number }; timeCreated?: string };
    temperature = b.machine?.temperature ?? 0;
    t = Date.parse(b.timeCreated ?? '') || 0;
  } catch {
    /* a summary of nothing */
  }
  const start = t - (t % WINDOW_MS);
  const msg = new device.Message(
    JSON.stringify({
      rule: 'machine1m',
      group: { deviceId },
      window: { type: 'tumbling', start: new Date(start).toISOString(), end: new Date(start + WINDOW_MS).toISOString() },
      count: 12,
      values: { tempAvg: temperature, tempMin: temperature - 1, tempMax: temperature + 1, tempStdev: 0.577, pressureAvg: 3.5, pressureMax: 6.9 },
      revision: 0,
    }),
  );
  msg.messageId = randomUUID();
  msg.contentType = 'application/json';
  msg.contentEncoding = 'utf-8';
  msg.properties.add('eddy-kind', 'summary');
  msg.properties.add('eddy-rule', 'machine1m');
  return msg;
}

client.on('inputMessage', (_input: string, msg: InstanceType<typeof device.Message>) => {
  received++;
  // Latency baseline: marked inputs go straight back upstream through the same SDK.
  if (echo && msg.properties.getValue('echo') !== undefined) {
    void client.sendOutputEvent('alerts', new device.Message(msg.getData() as Buffer)).catch(() => undefined);
  }
  // Integer arithmetic: exactly k sends in every n inputs.
  const sends = sending ? Math.floor((received * sendK) / sendN) - Math.floor(((received - 1) * sendK) / sendN) : 0;
  for (let j = 0; j < sends; j++) {
    const out = summaryFor(msg.getData() as Buffer, String(msg.properties.getValue('$.cdid') ?? 'local'));
    client.sendOutputEvent('summaries', out).then(
      () => void sent++,
      () => void failed++,
    );
  }
});
await client.open();
process.on('SIGTERM', () => {
  void client.close().finally(() => {
    process.stderr.write(`bare module: ${received} inputs${sending ? `, ${sent} outputs sent, ${failed} failed` : ''}\n`);
    process.exit(0);
  });
});
