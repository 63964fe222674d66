import type { AckGate } from '../../contracts/ackGate.js';

/**
 * The simulated sensor's side of the durability protocol (src/contracts/ackGate.ts): it acknowledges
 * nothing and cannot deliver again, so the input log is written before each input is processed
 * (`holdsAcks` false) and the hook is never needed.
 */
export const localAckGate: AckGate = {
  beforeAck: () => undefined,
  holdsAcks: false,
};
