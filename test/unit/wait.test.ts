import { getEventListeners } from 'node:events';
import { expect } from 'chai';
import { pause, withTimeout } from '../../function/async/wait.ts';

/** Milliseconds `p` took to settle, and its value. */
async function timed<T>(p: Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await p;
  return { ms: performance.now() - t0, value };
}

const after = <T>(ms: number, value: T) => new Promise<T>((r) => setTimeout(() => r(value), ms));

describe('pause: a wait shutdown can cut short', function () {
  it('without a signal it waits its time', async function () {
    expect((await timed(pause(40))).ms).to.be.at.least(35);
  });

  it('a signal that aborts midway ends the pause then, not at its end', async function () {
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 20);
    expect((await timed(pause(5_000, stop.signal))).ms).to.be.within(15, 1_000);
  });

  it('a signal that has already aborted ends the pause at once', async function () {
    const stop = new AbortController();
    stop.abort();
    expect((await timed(pause(5_000, stop.signal))).ms).to.be.below(50);
  });

  it('zero and negative pauses resolve on the next turn of the loop', async function () {
    for (const ms of [0, -100]) expect((await timed(pause(ms))).ms, String(ms)).to.be.below(50);
  });

  it('a pause that ran its time leaves no listener on the signal', async function () {
    const stop = new AbortController();
    for (let i = 0; i < 5; i++) await pause(1, stop.signal);
    expect(getEventListeners(stop.signal, 'abort')).to.have.length(0);
  });
});

describe('withTimeout: work, or undefined once the time is up', function () {
  const cases: Array<[string, () => Promise<unknown>, number, unknown]> = [
    ['work done in time gives its value', () => after(5, 'done'), 1_000, 'done'],
    ['work done in time with a falsy value gives that value', () => after(5, 0), 1_000, 0],
    ['work still running when the time is up gives undefined', () => after(1_000, 'late'), 20, undefined],
    ['work that rejects gives undefined, never a rejection', () => Promise.reject(new Error('broken')), 1_000, undefined],
    ['a deadline already past still takes work that is already done', () => Promise.resolve('ready'), -50, 'ready'],
  ];
  for (const [name, work, ms, want] of cases) {
    it(name, async function () {
      expect(await withTimeout(work(), ms)).to.equal(want);
    });
  }

  it('answers when the time is up, not when the work ends', async function () {
    expect((await timed(withTimeout(after(2_000, 'late'), 30))).ms).to.be.below(1_000);
  });
});
