import { expect } from 'chai';
import { isJsonText } from '../../function/bridge/json-text.ts';
import { contentTypeOf, JSON_CONTENT_TYPE, JSON_PARSE_BYTES, TEXT_CONTENT_TYPE } from '../../function/bridge/event.ts';

const parses = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

describe('bridge json text: one pass over the bytes, the same answer as JSON.parse', function () {
  const cases: [string, string][] = [
    ['an object', '{"a":1,"b":[true,false,null],"c":{"d":"e"}}'],
    ['an empty object and array', '[{},[],{ },[ ]]'],
    ['spaces, tabs, CR and LF around every token', ' \t\r\n{ "a" : [ 1 , 2 ] } \n'],
    ['numbers of every shape', '[0,-0,1,-12,3.25,-0.5,1e3,1E+3,2e-3,6.02E23]'],
    ['every escape', '"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE80"'],
    ['a lone surrogate escape (JSON.parse takes it)', '"\\ud800"'],
    ['UTF-8 text and DEL inside a string', '"héllo 🚀 \u007f"'],
    ['a bare literal', 'null'],
    ['a structured CloudEvent as data', '{"specversion":"1.0","id":"x","source":"s","type":"t","data":{"a":1}}'],
    ['a trailing comma in an array', '[1,2,]'],
    ['a trailing comma in an object', '{"a":1,}'],
    ['a missing colon', '{"a" 1}'],
    ['a key that is not a string', '{a:1}'],
    ['a leading zero', '01'],
    ['a bare minus', '-'],
    ['a dot without digits', '1.'],
    ['an exponent without digits', '1e+'],
    ['a leading plus', '+1'],
    ['a raw newline in a string', '"a\nb"'],
    ['a raw NUL in a string', '"a\u0000b"'],
    ['an unknown escape', '"\\x41"'],
    ['a short \\u escape', '"\\u12"'],
    ['an unclosed string', '"abc'],
    ['an unclosed array', '[1,[2]'],
    ['a mismatched close', '[1}'],
    ['two texts', '{}{}'],
    ['text after the value', 'true false'],
    ['a misspelt literal', 'nul'],
    ['a literal cut short at the end', 'tru'],
    ['single quotes', "'a'"],
    ['NaN', 'NaN'],
    ['nothing', ''],
    ['only spaces', '  '],
    ['a BOM before the value', '\ufeff{}'],
    ['a vertical tab as space', '\u000b1'],
  ];
  for (const [name, text] of cases) {
    it(`${name}: ${parses(text) ? 'JSON' : 'not JSON'}, as JSON.parse says`, function () {
      expect(isJsonText(Buffer.from(text, 'utf8'))).to.equal(parses(text));
    });
  }

  it('nesting 100,000 levels deep, arrays and objects, open and closed', function () {
    const deep = 100_000;
    expect(isJsonText(Buffer.from('['.repeat(deep) + ']'.repeat(deep)))).to.equal(true);
    expect(isJsonText(Buffer.from('{"a":'.repeat(deep) + '1' + '}'.repeat(deep)))).to.equal(true);
    expect(isJsonText(Buffer.from('['.repeat(deep) + ']'.repeat(deep - 1)))).to.equal(false);
    expect(isJsonText(Buffer.from('[{"a":'.repeat(deep) + '1' + '}]'.repeat(deep - 1) + ']}'))).to.equal(false);
  });

  it('fuzz: 20,000 mutations of JSON texts get the same answer as JSON.parse', function () {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = ['{', '}', '[', ']', ',', ':', '"', '\\', 'u', '0', '1', '-', '+', '.', 'e', 'E', ' ', '\n', 't', 'r', 'n', 'f', 'a', 'l', 's', '/', 'é', '\u0001'];
    const seeds = ['{"a":[1,2.5e-3,{"b":"c\\n"}],"d":null}', '[true,false,"\\u00e9",-0.0,{}]', '"text"', '123', '[[[]]]'];
    for (let n = 0; n < 20_000; n++) {
      const chars = [...seeds[random(seeds.length)]!];
      for (let k = 1 + random(3); k > 0; k--) {
        const at = random(chars.length + 1);
        const op = random(3);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, alphabet[random(alphabet.length)]!);
        else chars.splice(at, 1, alphabet[random(alphabet.length)]!);
      }
      const text = chars.join('');
      expect(isJsonText(Buffer.from(text, 'utf8')), JSON.stringify(text)).to.equal(parses(text));
    }
  });
});

describe('bridge event: the content type of a long item is exact, and costs no heap that grows with it', function () {
  it(`past ${JSON_PARSE_BYTES} bytes: a JSON array is JSON, the same array cut short is text`, function () {
    const array = Buffer.from(`[${'{},'.repeat(JSON_PARSE_BYTES)}{}]`);
    expect(contentTypeOf(array)).to.equal(JSON_CONTENT_TYPE);
    expect(contentTypeOf(array.subarray(0, array.length - 1))).to.equal(TEXT_CONTENT_TYPE);
  });

  it('a 16 MiB array of empty objects is called JSON without JSON.parse (which would need about 300 MB of heap)', function () {
    const objects = Math.floor((16 * 1024 * 1024 - 4) / 3);
    const item = Buffer.alloc(3 * objects + 4);
    item.write('[', 0);
    item.fill('{},', 1, 1 + 3 * objects);
    item.write('{}]', 1 + 3 * objects);
    const before = process.memoryUsage().heapUsed;
    expect(contentTypeOf(item)).to.equal(JSON_CONTENT_TYPE);
    expect(process.memoryUsage().heapUsed - before).to.be.below(8 * 1024 * 1024);
  });
});
