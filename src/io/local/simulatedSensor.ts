/**
 * A SimulatedTemperatureSensor-compatible generator (Azure/iotedge edge-modules/SimulatedTemperatureSensor,
 * Program.cs and MessageBody.cs): machine temperature starts at 21 °C and climbs on average +0.5 per
 * message (steps uniform in [-0.25, 1.25]) until it passes 100, then jitters ±0.5; pressure follows the
 * temperature linearly from 1 to 10 psi; ambient temperature 21 ± 0.5; humidity an integer 24–26;
 * `timeCreated` in .NET's ISO format with 7 fractional digits.
 */
import { mulberry32Advance, mulberry32Output } from '../../util/mulberry32.js';
export interface SensorOptions {
  readonly devices: readonly string[];
  /** Event time of the first message, ms. */
  readonly start: number;
  /** Event time between two messages of one device (the real sensor's MessageDelay, default 5 s). */
  readonly stepMs?: number;
  readonly seed?: number;
}

const T_MIN = 21, T_MAX = 100, P_MIN = 1, P_MAX = 10, AMBIENT = 21;

export class SimulatedSensor {
  private readonly temps: number[];
  private readonly times: number[];
  private readonly stepMs: number;
  /** mulberry32's state: saved with the position, so a restored sensor goes on with the same values. */
  private rng: number;
  /**
   * The device whose message `nextInTurn` sends next. The devices share one generator, so the numbers
   * a message gets depend on the order they are sent in: a restart must go on in that order even when
   * the input log ends between two devices of one round (a SIGKILL between their writes; test/integration/local/localRestart.test.ts,
   * "the kill between two devices of one sensor tick").
   */
  private turn = 0;
  private readonly rnd = (): number => {
    this.rng = mulberry32Advance(this.rng);
    return mulberry32Output(this.rng);
  };

  constructor(private readonly opts: SensorOptions) {
    this.temps = opts.devices.map(() => T_MIN);
    this.times = opts.devices.map(() => opts.start);
    this.stepMs = opts.stepMs ?? 5_000;
    this.rng = (opts.seed ?? 1) >>> 0;
  }

  /** Resumes a sensor saved with `state()` (local mode survives Ctrl-C: event time must not go back). */
  static restore(saved: unknown, opts: SensorOptions): SimulatedSensor {
    const sensor = new SimulatedSensor(opts);
    const s = saved as { temps?: unknown; times?: unknown; rng?: unknown; turn?: unknown } | null;
    if (s && typeof s.rng === 'number' && Number.isInteger(s.rng)) sensor.rng = s.rng >>> 0;
    // A state without `turn` was saved between two rounds (its checkpoints ran in turns of their own): device 0.
    if (s && typeof s.turn === 'number' && Number.isInteger(s.turn) && s.turn >= 0 && s.turn < opts.devices.length) sensor.turn = s.turn;
    if (s && Array.isArray(s.temps) && Array.isArray(s.times) && s.temps.length === opts.devices.length && s.times.length === opts.devices.length) {
      for (let i = 0; i < opts.devices.length; i++) {
        const temp = s.temps[i], time = s.times[i];
        if (typeof temp === 'number' && typeof time === 'number') {
          sensor.temps[i] = temp;
          sensor.times[i] = Math.max(time, opts.start);
        }
      }
    }
    return sensor;
  }

  /** Plain-JSON position of every device and of the generator (checkpointed with the engine state). */
  state(): { temps: number[]; times: number[]; rng: number; turn: number } {
    return { temps: [...this.temps], times: [...this.times], rng: this.rng, turn: this.turn };
  }

  /**
   * Moves past a message this sensor sent before a crash, replayed from the input log (test/integration/local/localRestart.test.ts,
   * "SIGKILL and restart"): the checkpoint saved the sensor where the log was cut, so every message logged after
   * it was already sent once and must not be generated again with the same event time. The sensor
   * generates the message it would send next (`nextInTurn`); when that is not the logged one (a
   * checkpoint without the generator's state), it takes the logged message's device, event time and
   * temperature as its position.
   */
  skipPast(deviceId: string, body: string): void {
    const i = this.opts.devices.indexOf(deviceId);
    if (i < 0) return;
    if (i === this.turn && this.nextInTurn().body === body) return;
    this.turn = (i + 1) % this.opts.devices.length;
    try {
      const logged = JSON.parse(body) as { machine?: { temperature?: unknown }; timeCreated?: unknown };
      const t = typeof logged.timeCreated === 'string' ? Date.parse(logged.timeCreated) : Number.NaN;
      if (Number.isFinite(t)) this.times[i] = t + this.stepMs;
      if (typeof logged.machine?.temperature === 'number') this.temps[i] = logged.machine.temperature;
    } catch {
      /* not a sensor message: nothing to learn from it */
    }
  }

  get devices(): readonly string[] {
    return this.opts.devices;
  }

  /** The next message in sending order: each device in turn (round-robin), as local mode's timer sends them. */
  nextInTurn(): { deviceId: string; body: string; time: number } {
    const i = this.turn;
    this.turn = (i + 1) % this.opts.devices.length;
    return this.next(i);
  }

  /**
   * The next message body of device `i`, as the real sensor would send it, and `time`: the simulated
   * device's clock when it sends it (its `timeCreated`, to the millisecond).
   */
  next(i: number): { deviceId: string; body: string; time: number } {
    let t = this.temps[i]!;
    t += t > T_MAX ? this.rnd() - 0.5 : -0.25 + this.rnd() * 1.5;
    this.temps[i] = t;
    const time = this.times[i]!;
    this.times[i] = time + this.stepMs;
    const body = {
      machine: { temperature: t, pressure: P_MIN + ((t - T_MIN) * (P_MAX - P_MIN)) / (T_MAX - T_MIN) },
      ambient: { temperature: AMBIENT + this.rnd() - 0.5, humidity: 24 + Math.floor(this.rnd() * 3) },
      timeCreated: dotNetIso(time, Math.floor(this.rnd() * 10_000)),
    };
    return { deviceId: this.opts.devices[i]!, body: JSON.stringify(body), time };
  }
}

/** `2026-11-26T03:00:00.1234567Z`: .NET's DateTime round-trip format as Newtonsoft writes it. */
export function dotNetIso(ms: number, subMsTicks: number): string {
  const iso = new Date(ms).toISOString();
  return iso.slice(0, 23) + String(subMsTicks).padStart(4, '0') + 'Z';
}

