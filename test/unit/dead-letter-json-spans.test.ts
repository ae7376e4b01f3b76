import { expect } from 'chai';
import { randomInt } from 'node:crypto';
import { arrayElements, NotJson, objectMembers } from '../../function/dead-letter/json-spans.ts';

const text = (bytes: Buffer, span: { start: number; end: number }) => bytes.toString('utf8', span.start, span.end);
const members = (json: string) => {
  const bytes = Buffer.from(json);
  return objectMembers(bytes).map(({ key, value }) => [text(bytes, key), text(bytes, value)]);
};
const elements = (json: string) => {
  const bytes = Buffer.from(json);
  return arrayElements(bytes).map((span) => text(bytes, span));
};

describe('dead-letter JSON spans: where members and elements lie, without parsing them', function () {
  it('cuts each member value out exactly as written: big integers, whitespace, escapes', function () {
    expect(members('{"id":"a","data":12345678901234567890123}')).to.deep.equal([
      ['"id"', '"a"'],
      ['"data"', '12345678901234567890123'],
    ]);
    expect(members(' {\n "data" :\t{ "a" : [ 1 ,2 ] } \r\n}\n')).to.deep.equal([['"data"', '{ "a" : [ 1 ,2 ] }']]);
    expect(members('{"d\\u0061ta":"x\\"}{]\\\\"}')).to.deep.equal([['"d\\u0061ta"', '"x\\"}{]\\\\"']]);
  });

  it('keeps a repeated name twice, in order', function () {
    expect(members('{"data":1,"data":2}')).to.deep.equal([
      ['"data"', '1'],
      ['"data"', '2'],
    ]);
  });

  it('brackets inside strings do not count', function () {
    expect(members('{"data":["]}", "{[", {"k":"}"}]}')).to.deep.equal([['"data"', '["]}", "{[", {"k":"}"}]']]);
  });

  it('bytes that are not UTF-8 inside a string pass through untouched', function () {
    const bytes = Buffer.concat([Buffer.from('{"data":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]);
    const [member] = objectMembers(bytes);
    expect(bytes.subarray(member!.value.start, member!.value.end).equals(Buffer.concat([Buffer.from('"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"')]))).to.equal(true);
  });

  for (const depth of [5_000, 10_000, 1_000_000]) {
    it(`finds the end of data nested ${depth} levels deep, with no recursion`, function () {
      const deep = `${'['.repeat(depth)}${'{"a":'.repeat(3)}1${'}'.repeat(3)}${']'.repeat(depth)}`;
      expect(members(`{"data":${deep},"id":"x"}`)).to.deep.equal([
        ['"data"', deep],
        ['"id"', '"x"'],
      ]);
    });
  }

  it('the elements of an array, each exactly as written', function () {
    expect(elements('[ {"id":"1"} , {"id" : "2"},3,"s",null,[[]] ]')).to.deep.equal(['{"id":"1"}', '{"id" : "2"}', '3', '"s"', 'null', '[[]]']);
    expect(elements('[]')).to.deep.equal([]);
    expect(members('{}')).to.deep.equal([]);
  });

  const broken: Array<[string, string]> = [
    ['empty', ''],
    ['only whitespace', ' \n'],
    ['not an object', '[1]'],
    ['unterminated object', '{"data":1'],
    ['unterminated string', '{"data":"abc}'],
    ['unclosed nested array', '{"data":[[1]}'],
    ['mismatched bracket', '{"data":[1}}'],
    ['missing colon', '{"data" 1}'],
    ['missing value', '{"data":}'],
    ['trailing comma', '{"data":1,}'],
    ['unquoted name', '{data:1}'],
    ['bad literal', '{"data":nope}'],
    ['bad number', '{"data":01}'],
    ['bytes after the object', '{"data":1} x'],
    ['two objects', '{}{}'],
    ['control character in a string', '{"data":"a\nb"}'],
    ['cut in the middle of 10,000 levels', `{"data":${'['.repeat(10_000)}`],
  ];
  for (const [label, json] of broken) {
    it(`refuses with NotJson: ${label}`, function () {
      expect(() => objectMembers(Buffer.from(json))).to.throw(NotJson);
    });
  }

  it('an array refuses what is not one array', function () {
    for (const json of ['{}', '[1,]', '[1 2]', '[', '[]]']) expect(() => arrayElements(Buffer.from(json)), json).to.throw(NotJson);
  });

  it('fuzz: for 1,000 random JSON objects, every member value is the JSON text of the parsed value', function () {
    const strings = ['"a\\"b"', '"}{][,:"', '"ünï 🚀"', '"\\u0000\\\\"', '""'];
    const scalar = () => [String(randomInt(-1e6, 1e6)), 'true', 'false', 'null', '-1.5e-3', strings[randomInt(strings.length)]!][randomInt(6)]!;
    const value = (depth: number): string => {
      if (depth > 4 || randomInt(3) === 0) return scalar();
      const n = randomInt(4);
      const space = [' ', '', '\n', '\t '][randomInt(4)]!;
      if (randomInt(2)) return `[${space}${Array.from({ length: n }, () => value(depth + 1)).join(`,${space}`)}${space}]`;
      return `{${Array.from({ length: n }, (_, i) => `${space}"k${i}"${space}:${value(depth + 1)}`).join(',')}}`;
    };
    for (let round = 0; round < 1_000; round += 1) {
      const json = `{${Array.from({ length: randomInt(1, 5) }, (_, i) => `"m${i}" : ${value(0)}`).join(' , ')}}`;
      const parsed = JSON.parse(json) as Record<string, unknown>;
      for (const [key, valueText] of members(json)) {
        expect(JSON.parse(valueText), json).to.deep.equal(parsed[JSON.parse(key) as string]);
      }
    }
  });
});
