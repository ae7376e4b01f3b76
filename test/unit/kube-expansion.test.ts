import { expect } from 'chai';
import { kubeletExpand } from '../../function/kube/expansion.ts';

describe('kubeletExpand: the kubelet\'s $(VAR) expansion', function () {
  it('table: references, escapes and every malformed form', function () {
    const vars = { A: 'a', '': 'empty', 'A)': 'never' };
    const rows: Array<[string, string]> = [
      ['$(A)', 'a'], ['x$(A)y$(A)', 'xaya'], ['$(B)', '$(B)'], ['$$(A)', '$(A)'], ['$$$(A)', '$a'], ['$$$$(A)', '$$(A)'],
      ['$', '$'], ['a$', 'a$'], ['$x', '$x'], ['$(', '$('], ['$(A', '$(A'], ['$()', 'empty'], ['$(A))', 'a)'],
      ['$($(A))', '$($(A))'], ['$€$🚀', '$€$🚀'], ['no dollar', 'no dollar'],
    ];
    for (const [input, want] of rows) expect(kubeletExpand(input, vars), JSON.stringify(input)).to.equal(want);
  });
});
