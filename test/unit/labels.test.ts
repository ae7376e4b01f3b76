import { expect } from 'chai';
import { ownerLabels, ownerSelector } from '../../function/kube/labels.ts';

describe('kube labels: ownership', function () {
  it('marks Jobs managed-by job-robot, with the instance only when configured', function () {
    expect(ownerLabels()).to.deep.equal({ 'app.kubernetes.io/managed-by': 'job-robot' });
    expect(ownerLabels('blue')).to.deep.equal({ 'app.kubernetes.io/managed-by': 'job-robot', 'app.kubernetes.io/instance': 'blue' });
  });

  it('an unnamed job-robot selects only Jobs without any instance label', function () {
    expect(ownerSelector()).to.equal('app.kubernetes.io/managed-by=job-robot,!app.kubernetes.io/instance');
  });

  it('a named job-robot selects only its own instance', function () {
    expect(ownerSelector('blue')).to.equal('app.kubernetes.io/managed-by=job-robot,app.kubernetes.io/instance=blue');
  });
});
