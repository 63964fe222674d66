import { describe, expect, it } from 'vitest';
import { DEFAULT_RULES_FILE, readEnv, readSimStart } from '../../../src/config/readEnv.js';

/** docs/contract.md sections 1 and 2: the mode and the variables, with their defaults; a bad value falls back and is reported. */
describe('readEnv', () => {
  it('local mode with every default when nothing is set', () => {
    expect(readEnv({})).toEqual({ mode: 'local', dataDir: './data', logLevel: 'info', metricsPort: 9600, storeMaxMB: 256, rulesFile: DEFAULT_RULES_FILE, productInfo: undefined, errors: [] });
    expect('productInfo' in readEnv({})).toBe(true);
    expect(DEFAULT_RULES_FILE).toMatch(/rules[\\/]default\.json$/);
  });

  it.each([[{ IOTEDGE_WORKLOADURI: 'unix:///var/run/iotedge/workload.sock' }], [{ EdgeHubConnectionString: 'HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=k' }]])(
    'IoT Edge mode when %j is set; the data dir defaults to /app/data there',
    (vars) => {
      const e = readEnv(vars);
      expect(e.mode).toBe('edge');
      expect(e.dataDir).toBe('/app/data');
    },
  );

  it('takes the values given; EDDY_METRICS_PORT=0 turns metrics off; empty strings mean unset', () => {
    const e = readEnv({ EDDY_DATA_DIR: '/tmp/x', EDDY_LOG_LEVEL: 'DEBUG', EDDY_METRICS_PORT: '0', EDDY_STORE_MAX_MB: '12.5', EDDY_RULES_FILE: '/r.json' });
    expect(e).toMatchObject({ dataDir: '/tmp/x', logLevel: 'debug', metricsPort: 0, storeMaxMB: 12.5, rulesFile: '/r.json', errors: [] });
    expect(readEnv({ EDDY_DATA_DIR: '', EDDY_METRICS_PORT: '', EDDY_STORE_MAX_MB: '', EDDY_RULES_FILE: '' })).toMatchObject({ dataDir: './data', metricsPort: 9600, storeMaxMB: 256, rulesFile: DEFAULT_RULES_FILE, errors: [] });
  });

  it('a bad value falls back to its default and is named in errors (reported in the twin)', () => {
    const e = readEnv({ EDDY_LOG_LEVEL: 'verbose', EDDY_METRICS_PORT: '70000', EDDY_STORE_MAX_MB: '-5' });
    expect(e).toMatchObject({ logLevel: 'info', metricsPort: 9600, storeMaxMB: 256 });
    expect(e.errors).toHaveLength(3);
    expect(e.errors[0]).toMatch(/^EDDY_LOG_LEVEL "verbose"/);
    expect(e.errors[1]).toMatch(/^EDDY_METRICS_PORT "70000"/);
    expect(e.errors[2]).toMatch(/^EDDY_STORE_MAX_MB "-5"/);
    expect(readEnv({ EDDY_METRICS_PORT: '80.5', EDDY_STORE_MAX_MB: 'lots' }).errors).toHaveLength(2);
  });

  it('EDDY_PRODUCT_INFO: the product info announced to IoT Hub; unset or empty leaves the placeholder to the adapter; a bad value is reported', () => {
    expect(readEnv({ EDDY_PRODUCT_INFO: 'Contoso.EddyOffer.Standard' })).toMatchObject({ productInfo: 'Contoso.EddyOffer.Standard', errors: [] });
    expect(readEnv({ EDDY_PRODUCT_INFO: '' })).toMatchObject({ productInfo: undefined, errors: [] });
    for (const bad of ['Contoso\nX-Injected: 1', 'x'.repeat(257), 'Contoso.Offer.Sku\u00e9']) {
      const e = readEnv({ EDDY_PRODUCT_INFO: bad });
      expect(e.productInfo).toBeUndefined();
      expect(e.errors).toHaveLength(1);
      expect(e.errors[0]).toMatch(/^EDDY_PRODUCT_INFO .* is not 1-256 printable ASCII characters; using PublisherId\.OfferId\.SkuId$/);
    }
  });

  it('EDDY_SIM_START: epoch milliseconds or ISO 8601 with an offset; unset or empty is the wall clock; anything else is an error, not a default', () => {
    expect(readSimStart({})).toEqual({ start: undefined });
    expect(readSimStart({ EDDY_SIM_START: '' })).toEqual({ start: undefined });
    expect(readSimStart({ EDDY_SIM_START: '2026-01-01T00:00:00Z' })).toEqual({ start: 1767225600000 });
    expect(readSimStart({ EDDY_SIM_START: '2026-01-01T01:30:00.5+01:30' })).toEqual({ start: 1767225600500 });
    expect(readSimStart({ EDDY_SIM_START: '2026-01-01T00:00Z' })).toEqual({ start: 1767225600000 });
    expect(readSimStart({ EDDY_SIM_START: '1767225600000' })).toEqual({ start: 1767225600000 });
    expect(readSimStart({ EDDY_SIM_START: '0' })).toEqual({ start: 0 });
    // No offset (the host's time zone would decide), not a time, a fraction of a ms, negative, beyond Date's range.
    for (const bad of ['2026-01-01T00:00:00', '2026-01-01', 'yesterday', '2026-13-01T00:00:00Z', '1767225600000.5', '-5', '9999999999999999', ' 1767225600000']) {
      const r = readSimStart({ EDDY_SIM_START: bad });
      expect(r, bad).toEqual({ error: expect.stringMatching(/^EDDY_SIM_START ".*" is neither epoch milliseconds nor an ISO 8601 time with an offset/) });
    }
  });
});
