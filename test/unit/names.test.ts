import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { MAX_PREFIX_LENGTH, identityHash, isDns1123Label, isValidPrefix, jobName } from '../../function/kube/names.ts';

describe('kube names: Job identity', function () {
  const cases: Array<[string, string, string]> = [
    ['plain', 'redis://127.0.0.1:6379/0/job-robot:queue', '1-0'],
    ['slashes in source and id', '/a/b/c', 'x/y/z'],
    ['empty id', 'src', ''],
    ['unicode', 'ソース', 'идентификатор-🚀'],
    ['very long id', 's', 'x'.repeat(10_000)],
    ['uppercase and dots', 'HTTP://Example.COM', 'ID.With.Dots'],
  ];
  for (const [label, source, id] of cases) {
    it(`is a DNS-1123 label of at most 63 characters: ${label}`, function () {
      const name = jobName('job-robot-', source, id);
      expect(isDns1123Label(name), name).to.equal(true);
      expect(name.length).to.be.at.most(63);
    });
  }

  it('is stable: the same (source, id) always gives the same name', function () {
    expect(jobName('jr-', 's', 'i')).to.equal(jobName('jr-', 's', 'i'));
  });

  it('does not collide when a slash moves between source and id', function () {
    expect(identityHash('a/b', 'c')).to.not.equal(identityHash('a', 'b/c'));
    expect(identityHash('ab', 'c')).to.not.equal(identityHash('a', 'bc'));
  });

  it('fuzz: 20,000 random pairs give valid, distinct names', function () {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const name = jobName('job-robot-', randomBytes(8).toString('latin1'), randomBytes(12).toString('base64'));
      expect(isDns1123Label(name), name).to.equal(true);
      seen.add(name);
    }
    expect(seen.size).to.equal(20_000);
  });

  it('accepts the longest prefix and rejects one character more', function () {
    const longest = 'j'.repeat(MAX_PREFIX_LENGTH);
    expect(jobName(longest, 's', 'i')).to.have.length(63);
    expect(() => jobName(`${longest}j`, 's', 'i')).to.throw(RangeError);
  });

  it('rejects prefixes that would not start a DNS-1123 label', function () {
    for (const bad of ['-x', '1job-', 'Job-', 'job_', 'job.']) expect(isValidPrefix(bad), bad).to.equal(false);
    for (const good of ['', 'j', 'job-robot-', 'a1-']) expect(isValidPrefix(good), good).to.equal(true);
  });
});
