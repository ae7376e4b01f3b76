import { expect } from 'chai';
import { ApiException } from '@kubernetes/client-node';
import { KubeApiError } from '../../function/kube/rest.ts';
import { continueAfterExpiry } from '../../function/reaper/reap.ts';

/** A refusal as kube/rest.ts throws it: the Status as the JSON text of the body. */
const refusal = (code: number, reason: string, extra: Record<string, unknown> = {}) =>
  new KubeApiError(code, JSON.stringify({ kind: 'Status', code, reason, message: 'x', ...extra }), {}, 'GET /apis/batch/v1/namespaces/ns/jobs');

/** An API failure as @kubernetes/client-node throws it: the same Status text, or the Status parsed. */
const exception = (code: number, body: unknown) => new ApiException(code, `HTTP ${code}`, body, {});

describe('continueAfterExpiry: the resume token of a 410 answer to a continued list', function () {
  it('reads the token a 410 Expired Status carries', function () {
    expect(continueAfterExpiry(refusal(410, 'Expired', { metadata: { continue: 'abc' } }))).to.equal('abc');
  });

  it('a 410 without a token, or with an empty one, offers none', function () {
    expect(continueAfterExpiry(refusal(410, 'Expired'))).to.equal(undefined);
    expect(continueAfterExpiry(refusal(410, 'Expired', { metadata: { continue: '' } }))).to.equal(undefined);
    expect(continueAfterExpiry(refusal(410, 'Expired', { metadata: { continue: 42 } }))).to.equal(undefined);
    expect(continueAfterExpiry(refusal(410, 'Expired', { metadata: null }))).to.equal(undefined);
  });

  it('only a 410 counts: a token in any other answer is ignored', function () {
    expect(continueAfterExpiry(refusal(409, 'Conflict', { metadata: { continue: 'abc' } }))).to.equal(undefined);
    expect(continueAfterExpiry(refusal(500, 'InternalError', { metadata: { continue: 'abc' } }))).to.equal(undefined);
  });

  it('a body that is not JSON (a proxy\u2019s page, a Status cut short), or an empty one, offers none', function () {
    expect(continueAfterExpiry(new KubeApiError(410, '<html>gone</html>', {}, 'GET'))).to.equal(undefined);
    expect(continueAfterExpiry(new KubeApiError(410, '{"kind":"Status","metadata":{"continue":"ab', {}, 'GET'))).to.equal(undefined);
    expect(continueAfterExpiry(new KubeApiError(410, '', {}, 'GET'))).to.equal(undefined);
  });

  it('the client library\u2019s ApiException is read alike, its body text or already parsed', function () {
    const status = { kind: 'Status', code: 410, reason: 'Expired', metadata: { continue: 'abc' } };
    expect(continueAfterExpiry(exception(410, JSON.stringify(status)))).to.equal('abc');
    expect(continueAfterExpiry(exception(410, status))).to.equal('abc');
    expect(continueAfterExpiry(exception(409, status))).to.equal(undefined);
    expect(continueAfterExpiry(exception(410, '<html>gone</html>'))).to.equal(undefined);
  });

  it('an error that is not an answer offers none: a network error, its string code, a thrown non-Error', function () {
    expect(continueAfterExpiry(new Error('boom'))).to.equal(undefined);
    expect(continueAfterExpiry(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).to.equal(undefined);
    expect(continueAfterExpiry({ code: 410, body: JSON.stringify({ metadata: { continue: 'abc' } }) })).to.equal(undefined);
    expect(continueAfterExpiry(undefined)).to.equal(undefined);
  });
});
