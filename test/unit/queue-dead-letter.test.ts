import { expect } from 'chai';
import { noteFields } from '../../function/queue/dead-letter.ts';
import { parseDeadLetter } from '../helpers/dead-letters.ts';
import { itemOf, redisErrorCode } from '../../function/queue/stream-source.ts';

describe('queue dead letter: fields', function () {
  it('round-trips id, item bytes, reason, status, attempts, time and source', function () {
    const time = new Date('2024-07-01T12:00:00.000Z');
    const note = { reason: 'sink answered 400: bad', status: 400, attempts: 1, time, source: 'redis://r:6379/0/q' };
    const item = Buffer.from([0xff, 0x00, 0x7b]);
    const fields = ['id', 'abc', 'item', item, ...noteFields(note)].map((f) => (Buffer.isBuffer(f) ? f : Buffer.from(f)));
    const letter = parseDeadLetter('1-0', fields);
    expect(letter).to.deep.include({ entry: '1-0', id: 'abc', reason: note.reason, status: 400, attempts: 1, source: note.source });
    expect(letter.time.toISOString()).to.equal(time.toISOString());
    expect(letter.item.equals(item)).to.equal(true);
  });

  it('status 0 stands for "no HTTP answer"', function () {
    expect(noteFields({ reason: 'timeout', status: 0, attempts: 3, time: new Date(0), source: 's' })).to.include('0');
  });
});

describe('queue stream mode: the item of an entry', function () {
  const b = (...parts: (string | Buffer)[]) => parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p)));

  it('is the value of the data field, byte for byte', function () {
    const value = Buffer.from([0xc3, 0x28, 0x00]);
    expect(itemOf(b('other', 'x', 'data', value), 'data').item.equals(value)).to.equal(true);
  });

  it('without the data field: the fields as one JSON object', function () {
    const { item, problem } = itemOf(b('job', 'backup', 'n', '3'), 'data');
    expect(problem).to.equal(undefined);
    expect(JSON.parse(item.toString())).to.deep.equal({ job: 'backup', n: '3' });
  });

  it('a field named __proto__ stays an ordinary JSON member', function () {
    const { item } = itemOf(b('__proto__', 'x'), 'data');
    expect(item.toString()).to.equal('{"__proto__":"x"}');
  });

  it('without the data field and with binary values: a problem, and the fields kept in base64', function () {
    const { item, problem } = itemOf(b('blob', Buffer.from([0xff])), 'data');
    expect(problem).to.match(/not text/);
    expect(JSON.parse(item.toString())).to.deep.equal([[Buffer.from('blob').toString('base64'), '/w==']]);
  });

  it('a data field is found even after a binary field', function () {
    expect(itemOf(b('blob', Buffer.from([0xff]), 'data', 'ok'), 'data').item.toString()).to.equal('ok');
  });

  it('a deleted entry (nil fields) has a problem and an empty item', function () {
    expect(itemOf(null, 'data')).to.deep.include({ problem: 'the stream entry was deleted before delivery' });
  });

  it('a Redis error is recognised by its code, not by words in the message', function () {
    expect(redisErrorCode(new Error('BUSYGROUP Consumer Group name already exists'), 'BUSYGROUP')).to.equal(true);
    expect(redisErrorCode(new Error('ERR something about BUSYGROUP'), 'BUSYGROUP')).to.equal(false);
    expect(redisErrorCode('BUSYGROUP', 'BUSYGROUP')).to.equal(false);
  });
});
