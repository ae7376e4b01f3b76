import { expect } from 'chai';
import { streamIdTime, uuidv7, uuidv7Prefix, uuidv7Time } from '../../function/queue/ids.ts';

describe('queue ids: UUIDv7 event ids', function () {
  it('has the version 7 and variant bits and the time it was made', function () {
    const now = Date.UTC(2024, 6, 1, 12, 0, 0, 123);
    const id = uuidv7(now, Buffer.alloc(10, 0xff));
    expect(id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(uuidv7Time(id)).to.equal(now);
  });

  it('100,000 ids made in the same millisecond are all different', function () {
    const seen = new Set<string>();
    const now = Date.now();
    for (let i = 0; i < 100_000; i++) seen.add(uuidv7(now));
    expect(seen.size).to.equal(100_000);
  });

  it('reads no time from things that are not UUIDv7', function () {
    expect(uuidv7Time('1700000000000-0')).to.equal(undefined);
    expect(uuidv7Time('0190a6d2-7c1e-4abc-8def-0123456789ab')).to.equal(undefined);
  });

  it('reads the time of a stream entry id, and nothing from other text', function () {
    expect(streamIdTime('1700000000123-7')).to.equal(1700000000123);
    expect(streamIdTime('abc')).to.equal(undefined);
  });
});

describe('queue ids: one random prefix names a batch', function () {
  it('prefix + four hex digits is a UUIDv7 carrying the claim time', function () {
    const now = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
    const prefix = uuidv7Prefix(now);
    expect(prefix).to.have.length(32);
    for (const n of ['0000', '0001', 'ffff']) expect(uuidv7Time(prefix + n)).to.equal(now);
  });

  it('10,000 prefixes drawn in the same millisecond are all different', function () {
    const now = Date.now();
    expect(new Set(Array.from({ length: 10_000 }, () => uuidv7Prefix(now))).size).to.equal(10_000);
  });
});
