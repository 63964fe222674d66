// Preloaded into the module's process (`node --import ./bench/noDelayPreload.mjs dist/main.js`) to
// measure what TCP_NODELAY on the module's own socket changes: neither azure-iot-mqtt-base
// (`_connectClient` builds the mqtt.js options itself, with no noDelay, and `setOptions` passes
// only ca/keepalive/webSocketAgent) nor mqtt.js 4 (`lib/connect/tls.js`: `tls.connect(opts)`) sets it.
import tls from 'node:tls';

const connect = tls.connect;
tls.connect = function (...args) {
  const socket = connect.apply(this, args);
  socket.setNoDelay(true);
  return socket;
};
