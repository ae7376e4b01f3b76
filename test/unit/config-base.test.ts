import { expect } from 'chai';
import { z } from 'zod';
import { ConfigError, baseSchema, baseSettings, envBoolean, parseConfig } from '../../function/config/base.ts';

describe('config: parseConfig', function () {
  const schema = baseSchema.extend({ DRY: envBoolean.default(false) });

  it('applies defaults when variables are unset', function () {
    const cfg = parseConfig(schema, {});
    expect(cfg).to.deep.include({ LOG_LEVEL: 'info', PORT: 8080, DRY: false });
  });

  it('coerces strings the environment gives', function () {
    expect(parseConfig(schema, { PORT: '9090', DRY: 'Yes' })).to.deep.include({ PORT: 9090, DRY: true });
  });

  it('PORT 0 (any free port) and 65535 are the ends of the range', function () {
    expect(parseConfig(schema, { PORT: '0' }).PORT).to.equal(0);
    expect(parseConfig(schema, { PORT: '65535' }).PORT).to.equal(65535);
    expect(() => parseConfig(schema, { PORT: '-1' })).to.throw(ConfigError, /PORT/);
    expect(() => parseConfig(schema, { PORT: '65536' })).to.throw(ConfigError, /PORT/);
  });

  it('names every offending variable in one error', function () {
    try {
      parseConfig(schema, { PORT: '70000', LOG_LEVEL: 'loud', NAMESPACE: 'Not_A_Label' });
      expect.fail('parseConfig accepted bad values');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.variables).to.have.members(['PORT', 'LOG_LEVEL', 'NAMESPACE']);
      expect(e.message).to.match(/PORT: /).and.match(/LOG_LEVEL: /).and.match(/NAMESPACE: must be a DNS-1123 label/);
    }
  });

  it('rejects a boolean that is neither true nor false', function () {
    expect(() => parseConfig(z.object({ DRY: envBoolean }), { DRY: 'maybe' })).to.throw(ConfigError, /DRY/);
  });
});

describe('config: baseSettings', function () {
  it('camelCases the base variables every component starts from', function () {
    const env = parseConfig(baseSchema, { LOG_LEVEL: 'debug', NAMESPACE: 'jobs', INSTANCE: 'blue', PORT: '9000' });
    expect(baseSettings(env)).to.deep.equal({ logLevel: 'debug', namespace: 'jobs', instance: 'blue', port: 9000 });
  });
});
