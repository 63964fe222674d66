// Preloaded into the BARE baseline module's process (`node --import ./bench/noDelayPreload.mjs
// bench/bareModule.ts`) so the baseline gets TCP_NODELAY as eddy does (eddy sets it itself on the
// SDK's socket in src/io/edgehub/edgeHubConnection.ts, `mqttSocketOf`). Needed because neither azure-iot-mqtt-base
// (`_connectClient` builds the mqtt.js options itself, with no noDelay, and `setOptions` passes
// only ca/keepalive/webSocketAgent) nor mqtt.js 4 (`lib/connect/tls.js`: `tls.connect(opts)`) sets it.
import tls from 'node:tls';

const connect = tls.connect;
tls.connect = function (...args) {
  const socket = connect.apply(this, args);
  socket.setNoDelay(true);
  return socket;
};
