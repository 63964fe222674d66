/**
 * The bare module of the end-to-end baseline: the same SDK (`ModuleClient.fromEnvironment(Mqtt)`,
 * MQTT over TLS to edgeHub) that only receives inputs and counts them. What eddy adds on top of this
 * (decode, input log, rules, outbox, forwarder) is the cost the end-to-end ratio shows.
 */
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';

const client = await device.ModuleClient.fromEnvironment(deviceMqtt.Mqtt);
let received = 0;
const echo = process.env.BARE_ECHO === '1';
client.on('inputMessage', (_input: string, msg: InstanceType<typeof device.Message>) => {
  received++;
  // Latency baseline: marked inputs go straight back upstream through the same SDK.
  if (echo && msg.properties.getValue('echo') !== undefined) {
    void client.sendOutputEvent('alerts', new device.Message(msg.getData() as Buffer)).catch(() => undefined);
  }
});
await client.open();
process.on('SIGTERM', () => {
  void client.close().finally(() => {
    process.stderr.write(`bare module: ${received} inputs\n`);
    process.exit(0);
  });
});
