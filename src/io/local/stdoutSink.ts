import type { OutputMessage, Sink } from '../../contracts/output.js';

/** Local mode's sink (docs/contract.md section 1): one JSON line per output message on stdout. */
export class StdoutSink implements Sink {
  constructor(private readonly write: (line: string) => boolean = (l) => process.stdout.write(l)) {}

  async send(m: OutputMessage): Promise<void> {
    const line = JSON.stringify({
      output: m.output,
      properties: { 'eddy-kind': m.kind, 'eddy-rule': m.rule, messageId: m.id, contentType: 'application/json', contentEncoding: 'utf-8' },
      body: m.body,
    });
    if (!this.write(line + '\n')) await new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
  }
}
