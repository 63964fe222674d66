/**
 * The edgeHub emulator as a standalone process, for benchmarks and child-process tests.
 *
 *   npx tsx test/helpers/edgeHubEmulatorCli.ts [--port N] [--route "FROM ... INTO ..."]... [--module analytics]
 *
 * stdout, one JSON object per line: first `{"event":"ready","port":N,"env":{...moduleEnv},"connectionStringEnv":{...}}`,
 * then `{"event":"upstream",...}` for every upstream message (body as UTF-8) and replies to commands.
 * stdin, one JSON command per line, answered with `{"id":..,"ok":true,"result":..}` or `{"id":..,"ok":false,"error":".."}`:
 *   {"id":1,"cmd":"pushDesired","args":["analytics",{"rules":{}}]}
 *   {"id":2,"cmd":"invokeMethod","args":["analytics","getStats",null,5000]}
 *   {"id":3,"cmd":"sendInput","args":["analytics","telemetry",{"machine":{"temperature":21}},{"deviceId":"sensor1"}]}
 *   {"id":4,"cmd":"twin","args":["analytics"]}      {"id":5,"cmd":"dropConnections"}      {"id":6,"cmd":"outage","args":[5000]}
 *   {"id":7,"cmd":"restartLosingSessions"}          {"id":8,"cmd":"delayPubacks","args":[41000,1]}   {"id":9,"cmd":"close"}
 * EOF on stdin or SIGTERM closes the emulator.
 */
import { createInterface } from 'node:readline';
import { startEdgeHubEmulator } from './edgeHubEmulator.js';

const args = process.argv.slice(2);
const routes: string[] = [];
let port = 0;
let moduleId = 'analytics';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port') port = Number(args[++i]);
  else if (args[i] === '--route') routes.push(args[++i]!);
  else if (args[i] === '--module') moduleId = args[++i]!;
}
const emu = await startEdgeHubEmulator(routes.length ? { port, routes } : { port });
const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
emu.on('upstream', (m: { body: Buffer }) => out({ event: 'upstream', ...m, body: m.body.toString('utf8') }));
out({ event: 'ready', port: emu.port, env: emu.moduleEnv(moduleId), connectionStringEnv: emu.connectionStringEnv(moduleId) });

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON arguments, checked by the emulator methods
const commands: Record<string, (...a: any[]) => unknown> = {
  pushDesired: (m: string, patch: Record<string, unknown>) => emu.pushDesired(m, patch),
  invokeMethod: (m: string, name: string, payload: unknown, timeoutMs?: number) => emu.invokeMethod(m, name, payload, timeoutMs),
  sendInput: (m: string, input: string, body: unknown, opts?: object) => emu.sendInput(m, input, body as object, opts),
  twin: (m: string) => emu.twin(m),
  dropConnections: () => emu.dropConnections(),
  outage: (ms: number) => emu.outage(ms),
  restartLosingSessions: () => emu.restartLosingSessions(),
  delayPubacks: (ms: number, count?: number) => emu.delayPubacks(ms, count),
  upstreamCount: () => emu.upstream.length,
};

let closing = false;
const shutdown = async (): Promise<void> => {
  if (closing) return;
  closing = true;
  await emu.close();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
const rl = createInterface({ input: process.stdin });
rl.on('close', () => void shutdown());
rl.on('line', (line) => {
  if (!line.trim()) return;
  let cmd: { id?: unknown; cmd: string; args?: unknown[] };
  try {
    cmd = JSON.parse(line) as typeof cmd;
  } catch {
    return out({ ok: false, error: 'not JSON' });
  }
  if (cmd.cmd === 'close') return void shutdown();
  const fn = commands[cmd.cmd];
  if (!fn) return out({ id: cmd.id, ok: false, error: `unknown command ${cmd.cmd}` });
  Promise.resolve()
    .then(() => fn(...(cmd.args ?? [])))
    .then(
      (result) => out({ id: cmd.id, ok: true, result: result ?? null }),
      (err: unknown) => out({ id: cmd.id, ok: false, error: String(err) }),
    );
});
