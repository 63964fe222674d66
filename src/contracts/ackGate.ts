/**
 * The input side of the durability protocol (docs/contract.md section 8): an input is in the input log
 * before the side that delivered it acknowledges it (an MQTT PUBACK), so a crash either keeps the input
 * or leaves it unacknowledged for the sender to deliver again; never neither.
 *
 * Each side that delivers inputs is an AckGate: edgeHub (src/io/edgehub/edgeHubConnection.ts, the
 * SDK's socket guarded), an MQTT broker (src/io/mqtt/mqttConnection.ts) and the local simulator
 * (src/io/local/localAckGate.ts, which acknowledges nothing). The input log's side is
 * src/app/inputJournal.ts. test/contract/ackGate.suite.ts is the one suite all three pass.
 */
export interface AckGate {
  /**
   * Registers the hook that makes the logged inputs durable. The side runs it before any
   * acknowledgement of an input it has handed over leaves the process (after every reconnect too).
   */
  beforeAck(flush: () => void): void;
  /**
   * True while the side runs that hook before every acknowledgement, so the log write of an input may
   * wait for the hook (one write per burst instead of one per input). False: the log must be written
   * before the input handler returns. Read per input: a reconnect can change it.
   */
  readonly holdsAcks: boolean;
}
