import { expect } from 'chai';
import { MAX_WAIT_SECONDS, parseStatusArgs } from '../../function/status/args.ts';

describe('job-robot status: arguments', function () {
  it('one id: answer at once, as text', function () {
    expect(parseStatusArgs(['0190a0a0-0000-7000-8000-000000000001'])).to.deep.equal({ args: { id: '0190a0a0-0000-7000-8000-000000000001', json: false } });
  });

  it('--json and --wait in any order around the id', function () {
    expect(parseStatusArgs(['--wait', '30', 'order-17', '--json'])).to.deep.equal({ args: { id: 'order-17', json: true, waitSeconds: 30 } });
    expect(parseStatusArgs(['--wait=2.5', 'order-17'])).to.deep.equal({ args: { id: 'order-17', json: false, waitSeconds: 2.5 } });
  });

  it('--wait 0 checks once with the exit codes of a wait', function () {
    expect(parseStatusArgs(['x', '--wait', '0'])).to.deep.equal({ args: { id: 'x', json: false, waitSeconds: 0 } });
  });

  it('a stream entry id is an id', function () {
    expect(parseStatusArgs(['1717243200000-0'])).to.deep.equal({ args: { id: '1717243200000-0', json: false } });
  });

  it('an id that starts with a dash comes after --', function () {
    expect(parseStatusArgs(['--', '-odd'])).to.deep.equal({ args: { id: '-odd', json: false } });
    expect(parseStatusArgs(['-odd'])).to.have.property('problem');
  });

  it('-h and --help ask for the usage', function () {
    expect(parseStatusArgs(['-h'])).to.deep.equal({ help: true });
    expect(parseStatusArgs(['--help', 'x'])).to.deep.equal({ help: true });
  });

  const bad: Array<[string, string[], RegExp]> = [
    ['no id', [], /id of the item is missing/],
    ['two ids', ['a', 'b'], /expected one id, got 2/],
    ['an empty id', [''], /the id is empty/],
    ['an id with a space', ['a b'], /the id must be visible ASCII/],
    ['an id with a control character', ['a\nb'], /the id must be visible ASCII/],
    ['an id longer than a producer id may be', ['x'.repeat(257)], /the id is 257 characters, over 256/],
    ['--wait without seconds', ['a', '--wait'], /--wait/],
    ['--wait with words', ['a', '--wait', 'soon'], /--wait takes seconds from 0 to 86400, not "soon"/],
    ['--wait negative', ['a', '--wait=-1'], /--wait takes seconds/],
    ['--wait beyond a day', ['a', '--wait', String(MAX_WAIT_SECONDS + 1)], /--wait takes seconds/],
    ['--wait in exponent notation', ['a', '--wait', '1e3'], /--wait takes seconds/],
    ['an unknown option', ['a', '--colour'], /Unknown option '--colour'/],
    ['--json with a value', ['a', '--json=yes'], /--json/],
  ];
  for (const [name, argv, message] of bad) {
    it(`refuses ${name}`, function () {
      const parsed = parseStatusArgs(argv);
      expect(parsed).to.have.property('problem').that.matches(message);
    });
  }
});
