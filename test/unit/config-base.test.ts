import { expect } from 'chai';
import { z } from 'zod';
import { ConfigError, baseSchema, envBoolean, envInt, parseConfig } from '../../function/config/base.ts';

describe('config: parseConfig', function () {
  const schema = baseSchema.extend({ PORT: envInt(1, 65535).default(8080), DRY: envBoolean.default(false) });

  it('applies defaults when variables are unset', function () {
    const cfg = parseConfig(schema, {});
    expect(cfg).to.deep.include({ LOG_LEVEL: 'info', PORT: 8080, DRY: false });
  });

  it('coerces strings the environment gives', function () {
    expect(parseConfig(schema, { PORT: '9090', DRY: 'Yes' })).to.deep.include({ PORT: 9090, DRY: true });
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
