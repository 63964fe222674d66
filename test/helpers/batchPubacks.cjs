/* eslint-disable @typescript-eslint/no-require-imports */
/* global require */
'use strict';
/*
 * Preloaded into the built module (`NODE_OPTIONS=--require <this file>`, with TEST_BATCH_PUBACKS=<n>) by
 * black-box tests that need a broker which reads a module's PUBACKs long after the module wrote them, as a
 * broker starved of CPU does: the first n PUBACKs the process writes are held back and then written
 * together in one write, so the broker reads them as one burst, and a test that SIGKILLs the module from
 * the broker's n/3-th PUBACK still sees the rest arrive after the kill. Nothing of the module is changed:
 * the TLS socket's `_write`/`_writev` are wrapped from outside, below the module's own write guard
 * (src/io/edgehub/edgeHubConnection.ts `guardSocket`, which runs before any byte reaches them).
 *
 * mqtt-packet (under the SDK's mqtt.js 4.3.8) writes a PUBACK as three chunks: the header byte 0x40, the
 * remaining length 0x02 and the two-byte packet id; corked, they reach `_writev` together.
 */
const tls = require('tls');

const LIMIT = Number(process.env.TEST_BATCH_PUBACKS ?? 0);
const proto = tls.TLSSocket.prototype;
const one = (b, v) => Buffer.isBuffer(b) && b.length === 1 && b[0] === v;
const held = [];
let released = LIMIT <= 0;

function hold(socket, id) {
  held.push(Buffer.from([0x40, 0x02, id[0], id[1]]));
  if (held.length < LIMIT) return;
  released = true;
  const burst = Buffer.concat(held);
  process.stderr.write(`{"level":30,"msg":"test preload: ${held.length} PUBACKs written in one burst"}\n`);
  setImmediate(() => socket.write(burst));
}

const writev = proto._writev;
proto._writev = function (chunks, cb) {
  if (released) return writev.call(this, chunks, cb);
  const kept = [];
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i].chunk;
    if (one(c, 0x40) && i + 2 < chunks.length && one(chunks[i + 1].chunk, 0x02) && chunks[i + 2].chunk.length === 2) {
      hold(this, chunks[i + 2].chunk);
      i += 2;
      continue;
    }
    kept.push(chunks[i]);
  }
  if (kept.length === 0) return cb();
  return writev.call(this, kept, cb);
};

/** Uncorked, a PUBACK comes as three `_write` calls: header, length, id. */
let step = 0;
const write = proto._write;
proto._write = function (chunk, encoding, cb) {
  if (released) return write.call(this, chunk, encoding, cb);
  if (step === 0 && one(chunk, 0x40)) return (step = 1), cb();
  if (step === 1 && one(chunk, 0x02)) return (step = 2), cb();
  if (step === 2 && Buffer.isBuffer(chunk) && chunk.length === 2) {
    step = 0;
    hold(this, chunk);
    return cb();
  }
  // Not a PUBACK after all: hand over what was taken for one.
  const taken = [[0x40], [0x40, 0x02]][step - 1];
  step = 0;
  if (taken === undefined) return write.call(this, chunk, encoding, cb);
  const rest = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding);
  return write.call(this, Buffer.concat([Buffer.from(taken), rest]), 'buffer', cb);
};
