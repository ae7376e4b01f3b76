import { expect } from 'chai';
import { ApiException } from '@kubernetes/client-node';
import { continueAfterExpiry } from '../../function/reaper/reap.ts';

/** An API failure as @kubernetes/client-node throws it: the Status as the JSON text of the body. */
const failure = (code: number, reason: string, extra: Record<string, unknown> = {}) =>
  new ApiException(code, `HTTP ${code}`, JSON.stringify({ kind: 'Status', code, reason, message: 'x', ...extra }), {});

describe('continueAfterExpiry: the resume token of a 410 answer to a continued list', function () {
  it('reads the token a 410 Expired Status carries', function () {
    expect(continueAfterExpiry(failure(410, 'Expired', { metadata: { continue: 'abc' } }))).to.equal('abc');
  });

  it('reads it from a body already parsed into an object', function () {
    const err = new ApiException(410, 'HTTP 410', { kind: 'Status', code: 410, reason: 'Expired', metadata: { continue: 'abc' } }, {});
    expect(continueAfterExpiry(err)).to.equal('abc');
  });

  it('a 410 without a token, or with an empty one, offers none', function () {
    expect(continueAfterExpiry(failure(410, 'Expired'))).to.equal(undefined);
    expect(continueAfterExpiry(failure(410, 'Expired', { metadata: { continue: '' } }))).to.equal(undefined);
    expect(continueAfterExpiry(failure(410, 'Expired', { metadata: { continue: 42 } }))).to.equal(undefined);
  });

  it('only a 410 counts: a token in any other answer is ignored', function () {
    expect(continueAfterExpiry(failure(409, 'Conflict', { metadata: { continue: 'abc' } }))).to.equal(undefined);
    expect(continueAfterExpiry(failure(500, 'InternalError', { metadata: { continue: 'abc' } }))).to.equal(undefined);
  });

  it('a body that is not JSON, or an error that is not an API answer, offers none', function () {
    expect(continueAfterExpiry(new ApiException(410, 'HTTP 410', '<html>gone</html>', {}))).to.equal(undefined);
    expect(continueAfterExpiry(new Error('boom'))).to.equal(undefined);
    expect(continueAfterExpiry(undefined)).to.equal(undefined);
  });
});
