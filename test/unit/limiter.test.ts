import { expect } from 'chai';
import { Limiter } from '../../function/async/limiter.ts';

/** Lets every pending promise callback run. */
const settle = () => new Promise((r) => setImmediate(r));

describe('limiter: bounded concurrency with back-pressure', function () {
  it('run resolves once the task has started, and waits while `limit` tasks are in flight', async function () {
    const limiter = new Limiter(2);
    const release: Array<() => void> = [];
    const task = () => new Promise<void>((r) => release.push(r));
    await limiter.run(task);
    await limiter.run(task);
    expect(limiter.active).to.equal(2);
    let thirdStarted = false;
    const third = limiter.run(task).then(() => (thirdStarted = true));
    await settle();
    expect(thirdStarted).to.equal(false);
    expect(release).to.have.length(2);
    release[0]!();
    await third;
    expect(thirdStarted).to.equal(true);
    expect(limiter.active).to.equal(2);
    for (const r of release) r();
    await limiter.drain();
    expect(limiter.active).to.equal(0);
  });

  it('a producer feeding 60 tasks of uneven length never has more than the limit in flight, and uses it', async function () {
    const limiter = new Limiter(7);
    let inFlight = 0;
    let max = 0;
    for (let i = 0; i < 60; i++) {
      await limiter.run(async () => {
        max = Math.max(max, ++inFlight);
        await new Promise((r) => setTimeout(r, (i * 7) % 5));
        inFlight--;
      });
    }
    await limiter.drain();
    expect(max).to.equal(7);
    expect(inFlight).to.equal(0);
  });

  it('drain waits for tasks started while it waits', async function () {
    const limiter = new Limiter(1);
    const done: number[] = [];
    await limiter.run(async () => {
      await settle();
      done.push(1);
    });
    const queued = limiter.run(async () => {
      done.push(2);
    });
    await limiter.drain();
    await queued;
    expect(done).to.deep.equal([1, 2]);
  });

  it('refuses a limit below 1 or not a whole number', function () {
    expect(() => new Limiter(0)).to.throw(RangeError, /concurrency/);
    expect(() => new Limiter(1.5)).to.throw(RangeError, /concurrency/);
  });
});
