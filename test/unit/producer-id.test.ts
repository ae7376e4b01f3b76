import { expect } from 'chai';
import { idProblem, MAX_PRODUCER_ID_CHARS, producerId } from '../../function/queue/producer-id.ts';

const of = (text: string) => producerId(Buffer.from(text), 'id');

describe('producer ids: the JSON field that names an item', function () {
  const cases: [string, string, ReturnType<typeof producerId>][] = [
    ['a string field', '{"id":"order-7","n":1}', { id: 'order-7' }],
    ['the longest id', JSON.stringify({ id: 'a'.repeat(MAX_PRODUCER_ID_CHARS) }), { id: 'a'.repeat(MAX_PRODUCER_ID_CHARS) }],
    ['every visible ASCII character', JSON.stringify({ id: '!~{}/:%"\\' }), { id: '!~{}/:%"\\' }],
    ['no such field', '{"other":"x"}', undefined],
    ['not JSON', 'order-7', undefined],
    ['a JSON array', '["order-7"]', undefined],
    ['a JSON string', '"order-7"', undefined],
    ['JSON null', 'null', undefined],
    ['the field only inherited', '{"__proto__":{"id":"x"}}', undefined],
  ];
  for (const [name, text, want] of cases) {
    it(`${name}: ${JSON.stringify(want)}`, function () {
      expect(of(text)).to.deep.equal(want);
    });
  }

  const refused: [string, string, RegExp][] = [
    ['a number', '{"id":42}', /must be a string, not number/],
    ['null', '{"id":null}', /must be a string, not null/],
    ['an object', '{"id":{"a":1}}', /must be a string, not object/],
    ['empty', '{"id":""}', /is empty/],
    ['one character too long', JSON.stringify({ id: 'a'.repeat(MAX_PRODUCER_ID_CHARS + 1) }), /257 characters, over 256/],
    ['a space', '{"id":"a b"}', /visible ASCII/],
    ['a newline (would break a header)', '{"id":"a\\nb"}', /visible ASCII/],
    ['non-ASCII', '{"id":"café"}', /visible ASCII/],
  ];
  for (const [name, text, reason] of refused) {
    it(`refused, ${name}: the item is dead-lettered invalid-id with the reason`, function () {
      const got = of(text);
      expect(got && 'problem' in got ? got.problem : '').to.match(/^invalid-id: the item's "id" /).and.match(reason);
    });
  }

  it('fuzz: whatever the bytes, the answer is an id that passes idProblem, a problem, or nothing, and never a throw', function () {
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(Array.from({ length: Math.floor(Math.random() * 40) }, () => Math.floor(Math.random() * 256)));
      const fields = [bytes, Buffer.from(JSON.stringify({ id: bytes.toString('latin1') }))];
      for (const item of fields) {
        const got = producerId(item, 'id');
        if (got && 'id' in got) expect(idProblem(got.id)).to.equal(undefined);
      }
    }
  });
});
