import { expect } from 'chai';
import { familyPrefix, hashTag, queueKeys, sameSlot, slotText } from '../../function/queue/keys.ts';

/** Redis Cluster's slot function: CRC16/XMODEM of the hashed part, mod 16384. */
function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}
function keySlot(key: string): number {
  const s = key.indexOf('{');
  if (s >= 0) {
    const e = key.indexOf('}', s + 1);
    if (e > s + 1) key = key.slice(s + 1, e);
  }
  return crc16(Buffer.from(key, 'utf8')) % 16384;
}

describe('queue keys: one hash-tagged family per queue', function () {
  it('the reference slot function matches Redis (CRC16 check value and documented slots)', function () {
    expect(crc16(Buffer.from('123456789'))).to.equal(0x31c3);
    expect(keySlot('foo')).to.equal(12182);
    expect(keySlot('somekey')).to.equal(11058);
    expect(keySlot('{user1000}.following')).to.equal(keySlot('{user1000}.followers'));
  });

  const tags: [string, string | undefined][] = [
    ['job-robot:queue', undefined],
    ['{jobs}', 'jobs'],
    ['orders:{jobs}:queue', 'jobs'],
    ['a{}b', undefined],
    ['a{}{b}', undefined],
    ['{a}{b}', 'a'],
    ['a{b', undefined],
    ['a}b{c}', 'c'],
    ['{{x}}', '{x'],
  ];
  for (const [key, tag] of tags) {
    it(`hash tag of ${JSON.stringify(key)} is ${JSON.stringify(tag)} (Redis rule: first "{", first "}" after it, non-empty)`, function () {
      expect(hashTag(key)).to.equal(tag);
    });
  }

  for (const queue of ['job-robot:queue', 'orders:{jobs}:queue', 'a{b', 'q with spaces', 'ünïcode:queue', '{x}', 'a}b{c}']) {
    it(`every key of queue ${JSON.stringify(queue)} lands in the queue's own slot`, function () {
      const k = queueKeys(queue);
      const all = [k.queue, k.items, k.attempts, k.consumers, k.deadLetter, k.processing('pod-1'), k.claims('pod-1'), k.processing('we{ird}'), k.claims('x}y')];
      for (const key of all) {
        expect(keySlot(key), key).to.equal(keySlot(queue));
        expect(sameSlot(key, queue), key).to.equal(true);
      }
    });
  }

  it('the default queue wraps its whole name as the tag', function () {
    const k = queueKeys('job-robot:queue');
    expect(k.items).to.equal('{job-robot:queue}:items');
    expect(k.processing('pod-1')).to.equal('{job-robot:queue}:processing:pod-1');
    expect(k.claims('pod-1')).to.equal('{job-robot:queue}:claims:pod-1');
    expect(k.consumers).to.equal('{job-robot:queue}:consumers');
    expect(k.deadLetter).to.equal('{job-robot:queue}:dead-letter');
  });

  it('a queue key that already has a hash tag keeps it as the prefix', function () {
    expect(queueKeys('orders:{jobs}:queue').items).to.equal('orders:{jobs}:queue:items');
  });

  it('two queues get disjoint families even when they share a tag', function () {
    const a = queueKeys('x:{t}:a');
    const b = queueKeys('x:{t}:b');
    expect(a.items).to.not.equal(b.items);
    expect(sameSlot(a.items, b.items)).to.equal(true);
  });

  for (const bad of ['a}b', 'a{}b', 'x}']) {
    it(`refuses queue key ${JSON.stringify(bad)}: a "}" outside a tag would split the family over two slots`, function () {
      expect(familyPrefix(bad)).to.have.property('problem');
      expect(() => queueKeys(bad)).to.throw(/hash tag/);
    });
  }

  it('a dead-letter override keeps the given name', function () {
    expect(queueKeys('job-robot:queue', '{job-robot:queue}:dlq').deadLetter).to.equal('{job-robot:queue}:dlq');
  });

  it('slotText is the tag or the whole key', function () {
    expect(slotText('{a}b')).to.equal('a');
    expect(slotText('ab')).to.equal('ab');
  });

  it('fuzz: random keys without "}" always keep the family in one slot', function () {
    const alphabet = 'ab{:- é';
    for (let n = 0; n < 2000; n++) {
      let key = '';
      const len = 1 + Math.floor(Math.random() * 12);
      for (let i = 0; i < len; i++) key += alphabet[Math.floor(Math.random() * alphabet.length)];
      const k = queueKeys(key);
      expect(keySlot(k.items), key).to.equal(keySlot(key));
      expect(keySlot(k.processing('c')), key).to.equal(keySlot(key));
    }
  });
});
