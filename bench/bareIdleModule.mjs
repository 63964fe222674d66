/**
 * The baseline of bench/idleRss.ts: a module that only connects with the same SDK eddy uses
 * (`ModuleClient.fromEnvironment(Mqtt)`, MQTT over TLS to edgeHub), listens for inputs and does
 * nothing else. Plain JavaScript, run without a loader, so that its RSS is the SDK's and Node's
 * alone: bench/bareModule.ts runs under tsx, whose loader adds its own megabytes to the baseline.
 */
import common from 'azure-iot-common';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';

void common;
const client = await device.ModuleClient.fromEnvironment(deviceMqtt.Mqtt);
let received = 0;
client.on('inputMessage', () => void received++);
await client.open();
process.on('SIGTERM', () => {
  void client.close().finally(() => process.exit(0));
});
