import { expect } from 'chai';
import { SeenCreated } from '../../function/results/seen.ts';

describe('results: ids already recorded as created, bounded', function () {
  it('remembers what it was told, and nothing else', function () {
    const seen = new SeenCreated(3);
    seen.add('a');
    expect(seen.has('a')).to.equal(true);
    expect(seen.has('b')).to.equal(false);
  });

  it('at capacity, the oldest id is forgotten first; adding an id again does not grow it', function () {
    const seen = new SeenCreated(3);
    for (const id of ['a', 'b', 'c', 'a', 'd']) seen.add(id);
    expect(seen.size).to.equal(3);
    expect(['a', 'b', 'c', 'd'].filter((id) => seen.has(id))).to.deep.equal(['b', 'c', 'd']);
  });

  it('a flood of distinct ids keeps it at its capacity', function () {
    const seen = new SeenCreated(100);
    for (let i = 0; i < 10_000; i++) seen.add(`id-${i}`);
    expect(seen.size).to.equal(100);
    expect(seen.has('id-9999')).to.equal(true);
    expect(seen.has('id-9899')).to.equal(false);
  });
});
