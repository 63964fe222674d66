/**
 * Framing for the scripted MQTT brokers of the tests (test/helpers/scriptedEdgeHub.ts,
 * test/contract/ackGate.test.ts, test/unit/io/mqttConnection.test.ts): the fixed header is the same
 * in MQTT 3.1.1 (section 2.2) and 5.0 (section 2.1).
 */

/** MQTT variable byte integer (MQTT 5.0 section 1.5.5; 3.1.1 section 2.2.3 "Remaining Length"). */
export function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** A control packet: its first byte (type and flags), the remaining length, the body. */
export const packet = (first: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([first, ...varint(body.length)]), body]);
