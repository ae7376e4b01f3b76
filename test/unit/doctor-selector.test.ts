import { expect } from 'chai';
import { selects } from '../../function/doctor/admission-check.ts';

describe('doctor: which namespaces a binding\'s namespaceSelector selects', function () {
  const labels = { 'kubernetes.io/metadata.name': 'job-robot', team: 'a' };
  const table: Array<[string, Parameters<typeof selects>[0], boolean]> = [
    ['no selector: every namespace', undefined, true],
    ['empty selector: every namespace', {}, true],
    ['matchLabels equal', { matchLabels: { 'kubernetes.io/metadata.name': 'job-robot' } }, true],
    ['matchLabels on another namespace', { matchLabels: { 'kubernetes.io/metadata.name': 'other' } }, false],
    ['matchLabels all must hold', { matchLabels: { team: 'a', tier: 'x' } }, false],
    ['In', { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['x', 'job-robot'] }] }, true],
    ['In without the key', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['x'] }] }, false],
    ['NotIn', { matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['a'] }] }, false],
    ['NotIn without the key', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['x'] }] }, true],
    ['Exists', { matchExpressions: [{ key: 'team', operator: 'Exists' }] }, true],
    ['DoesNotExist', { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, false],
    ['an unknown operator selects nothing', { matchExpressions: [{ key: 'team', operator: 'Near' }] }, false],
    ['labels and expressions both hold', { matchLabels: { team: 'a' }, matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, true],
  ];
  for (const [name, selector, want] of table) {
    it(name, function () {
      expect(selects(selector, labels)).to.equal(want);
    });
  }
});
