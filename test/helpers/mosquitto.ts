import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'node:net';
import { freePort } from './freePort.js';

const CERTS = path.resolve(import.meta.dirname, '../fixtures/certs');

/** Where Debian's mosquitto package puts the broker (not on a normal user's PATH). */
export function mosquittoBinary(): string {
  for (const p of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto']) if (existsSync(p)) return p;
  throw new Error('mosquitto is not installed (Debian: apt-get install -y mosquitto; .ci/run installs it)');
}

export interface Mosquitto {
  /** Plain listener on 127.0.0.1, username/password required. */
  readonly port: number;
  /** TLS listener (test/fixtures/certs/server.pem, CN=localhost), username/password required. */
  readonly tlsPort: number;
  readonly username: string;
  readonly password: string;
  readonly caFile: string;
  log(): string;
  /**
   * Stops the broker as a service manager does (SIGTERM: with persistence on, Mosquitto writes its
   * sessions and queued messages to disk on the way out) and starts it again on the same ports and files.
   */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface MosquittoOptions {
  /**
   * `persistence true` in a directory of its own, as Debian's packaged mosquitto.conf has it: sessions,
   * subscriptions and queued QoS 1 messages outlive a restart of the broker (a graceful one: Mosquitto
   * saves at exit and every `autosave_interval`). Default false: sessions live in memory.
   */
  persistence?: boolean;
}

/**
 * A real Mosquitto broker of its own: a fresh config, a password file made with mosquitto_passwd,
 * a plain and a TLS listener on free ports, no anonymous access. Sessions live in memory unless
 * `persistence` is set.
 */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const bin = mosquittoBinary();
  const dir = mkdtempSync(path.join(tmpdir(), 'eddy-mosquitto-'));
  const username = 'eddy';
  const password = 'p4ss word!';
  const pwFile = path.join(dir, 'passwd');
  writeFileSync(pwFile, '');
  execFileSync(path.join(path.dirname(bin), '..', 'bin', 'mosquitto_passwd'), ['-b', pwFile, username, password]);
  const [port, tlsPort] = [await freePort(), await freePort()];
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(conf, [
    // As root, mosquitto would switch to the `mosquitto` user and could not read this private directory.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    'per_listener_settings false',
    'allow_anonymous false',
    `password_file ${pwFile}`,
    ...(opts.persistence === true ? ['persistence true', `persistence_location ${dir}/`] : ['persistence false']),
    'max_queued_messages 0',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    `listener ${port} 127.0.0.1`,
    `listener ${tlsPort} 127.0.0.1`,
    `cafile ${path.join(CERTS, 'ca.pem')}`,
    `certfile ${path.join(CERTS, 'server.pem')}`,
    `keyfile ${path.join(CERTS, 'server.key')}`,
    '',
  ].join('\n'));
  let out = '';
  let child: ChildProcess;
  let exit: Promise<void>;
  const launch = async (): Promise<void> => {
    child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const c = child;
    exit = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    const end = Date.now() + 10_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`mosquitto exited: ${out}`);
      if (await canConnect(port) && await canConnect(tlsPort)) break;
      if (Date.now() > end) throw new Error(`mosquitto did not listen: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await launch();
  return {
    port, tlsPort, username, password, caFile: path.join(CERTS, 'ca.pem'),
    log: () => out,
    restart: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exit;
      await launch();
    },
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exit;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
