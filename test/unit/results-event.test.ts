import { expect } from 'chai';
import type { V1Job } from '@kubernetes/client-node';
import { APISERVER_ADD_TYPE, APISERVER_DELETE_TYPE, APISERVER_UPDATE_TYPE, JOB_FAILED_TYPE, JOB_SUCCEEDED_TYPE } from '../../function/events.ts';
import { eventsFromRequest } from '../../function/http/cloudevent.ts';
import { InvalidEvent } from '../../function/http/errors.ts';
import { EVENT_ID_ANNOTATION, EVENT_SOURCE_ANNOTATION, MANAGED_BY_LABEL } from '../../function/kube/labels.ts';
import { MAX_MESSAGE_CHARS } from '../../function/queue/results.ts';
import { decide } from '../../function/results/decide.ts';
import { readJobChange, type JobChange } from '../../function/results/job-event.ts';
import { isFinished, isFinishedRecording, outcomeReply, type FinishedRecording } from '../../function/results/reply.ts';
import { apiServerAttributes, type RawObject } from '../helpers/results.ts';

const UID = '0d4c1f0e-9a1b-4c2d-8e3f-5a6b7c8d9e0f';

/** A Job as a watch hands it to the adapter: every field the API server sends, not only those read. */
function rawJob(overrides: { metadata?: Record<string, unknown>; status?: unknown } = {}): RawObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: 'job-robot-5f2e',
      namespace: 'jobs',
      uid: UID,
      resourceVersion: '4711',
      generation: 1,
      creationTimestamp: '2026-11-28T12:00:00Z',
      labels: { [MANAGED_BY_LABEL]: 'job-robot', 'job-robot.dev/identity': '5f2e' },
      annotations: { [EVENT_ID_ANNOTATION]: 'item-7', [EVENT_SOURCE_ANNOTATION]: 'redis://redis:6379/0/job-robot:queue' },
      managedFields: [{ manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'batch/v1', time: '2026-11-28T12:00:01Z', fieldsType: 'FieldsV1', fieldsV1: {} }],
      ...overrides.metadata,
    },
    spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } } },
    status:
      overrides.status === undefined
        ? {
            startTime: '2026-11-28T12:00:01Z',
            completionTime: '2026-11-28T12:01:00Z',
            succeeded: 1,
            conditions: [
              { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods', lastProbeTime: '2026-11-28T12:01:00Z', lastTransitionTime: '2026-11-28T12:01:00Z' },
              { type: 'Complete', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods', lastProbeTime: '2026-11-28T12:01:00Z', lastTransitionTime: '2026-11-28T12:01:00Z' },
            ],
          }
        : overrides.status,
  };
}

/** The event as the results function reads it off the wire, binary mode (as the adapter and the Broker send it). */
function binary(type: 'add' | 'update' | 'delete', body: string, contentType = 'application/json', object: RawObject = rawJob()): JobChange {
  const headers: Record<string, string> = { 'content-type': contentType };
  for (const [k, v] of Object.entries(apiServerAttributes(type, object))) headers[`ce-${k}`] = v;
  return readJobChange(eventsFromRequest(headers, Buffer.from(body))[0]!);
}

function structured(type: 'add' | 'update' | 'delete', data: unknown): JobChange {
  const event = { ...apiServerAttributes(type, rawJob()), datacontenttype: 'application/json', data };
  return readJobChange(eventsFromRequest({ 'content-type': 'application/cloudevents+json' }, Buffer.from(JSON.stringify(event)))[0]!);
}

function refused(read: () => unknown): InvalidEvent {
  try {
    read();
  } catch (err) {
    if (err instanceof InvalidEvent) return err;
    throw err;
  }
  throw new Error('the event was accepted');
}

describe('results: reading an ApiServerSource event (readJobChange)', function () {
  it('the adapter\'s binary-mode event for a Job: the change and the Job, times as the API sent them', function () {
    const { change, watched } = binary('update', JSON.stringify(rawJob()));
    expect(change).to.equal('update');
    expect(watched.kind).to.equal('job');
    const job = (watched as { job: V1Job }).job;
    expect(job.metadata).to.deep.include({ name: 'job-robot-5f2e', namespace: 'jobs', uid: UID, creationTimestamp: '2026-11-28T12:00:00Z' });
    expect(job.status?.conditions?.map((c) => c.type)).to.deep.equal(['SuccessCriteriaMet', 'Complete']);
    // Only what the decision reads is kept.
    expect(job.metadata).to.not.have.property('managedFields');
    expect(job).to.not.have.property('spec');
  });

  it('structured mode reads the same', function () {
    expect(structured('add', rawJob())).to.deep.equal(binary('add', JSON.stringify(rawJob())));
  });

  it('add, update and delete are the three resource types', function () {
    expect(binary('add', JSON.stringify(rawJob())).change).to.equal('add');
    expect(binary('delete', JSON.stringify(rawJob())).change).to.equal('delete');
    expect([APISERVER_ADD_TYPE, APISERVER_UPDATE_TYPE, APISERVER_DELETE_TYPE]).to.deep.equal([
      'dev.knative.apiserver.resource.add',
      'dev.knative.apiserver.resource.update',
      'dev.knative.apiserver.resource.delete',
    ]);
  });

  it('a Reference-mode event (the object\'s reference, not the object) is refused, naming the type', function () {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    for (const [k, v] of Object.entries({ ...apiServerAttributes('add', rawJob()), type: 'dev.knative.apiserver.ref.add' })) headers[`ce-${k}`] = v;
    const ref = { apiVersion: 'batch/v1', kind: 'Job', name: 'job-robot-5f2e', namespace: 'jobs' };
    const err = refused(() => readJobChange(eventsFromRequest(headers, Buffer.from(JSON.stringify(ref)))[0]!));
    expect(err.reason).to.equal('unexpected-type');
    expect(err.message).to.contain('not dev.knative.apiserver.ref.add');
  });

  const notObjects: Array<[string, string, string | undefined]> = [
    ['an array', '[{"apiVersion":"batch/v1","kind":"Job"}]', undefined],
    ['a string', '"job"', undefined],
    ['a number', '42', undefined],
    ['null', 'null', undefined],
    ['no data at all', '', undefined],
    ['bytes (not JSON)', '{"apiVersion":"batch/v1","kind":"Job"}', 'application/octet-stream'],
    ['text', '{"apiVersion":"batch/v1","kind":"Job"}', 'text/plain'],
  ];
  for (const [name, body, contentType] of notObjects) {
    it(`data that is ${name} is refused (invalid-data)`, function () {
      expect(refused(() => binary('add', body, contentType)).reason).to.equal('invalid-data');
    });
  }

  it('an object that names no apiVersion and kind is refused', function () {
    const err = refused(() => binary('add', JSON.stringify({ metadata: { name: 'x' } })));
    expect(err.reason).to.equal('invalid-data');
    expect(err.message).to.contain('names no apiVersion and kind');
  });

  it('JSON that does not parse is refused before anything else', function () {
    expect(refused(() => binary('add', '{"apiVersion":')).reason).to.equal('invalid-json');
  });

  it('any other object is returned by its kind, to be ignored: a Pod, a Job of another API version, a CronJob', function () {
    for (const [apiVersion, kind] of [['v1', 'Pod'], ['batch/v1beta1', 'Job'], ['batch/v1', 'CronJob'], ['example.com/v1', 'Job']] as const) {
      const object = { apiVersion, kind, metadata: { name: 'x', namespace: 'jobs' } };
      expect(binary('add', JSON.stringify(object), 'application/json', object).watched).to.deep.equal({ kind: 'other', what: `${apiVersion}/${kind}` });
    }
  });

  const malformed: Array<[string, RawObject, string]> = [
    ['without a uid', rawJob({ metadata: { uid: undefined } }), 'metadata.uid'],
    ['with an empty name', rawJob({ metadata: { name: '' } }), 'metadata.name'],
    ['with a label that is not a string', rawJob({ metadata: { labels: { [MANAGED_BY_LABEL]: 7 } } }), `metadata.labels.${MANAGED_BY_LABEL}`],
    ['with conditions that are not a list', rawJob({ status: { conditions: { type: 'Complete' } } }), 'status.conditions'],
    ['with a condition without a status', rawJob({ status: { conditions: [{ type: 'Complete' }] } }), 'status.conditions.0.status'],
  ];
  for (const [name, object, path] of malformed) {
    it(`a Job ${name} is refused, naming ${path}`, function () {
      const err = refused(() => binary('update', JSON.stringify(object)));
      expect(err.reason).to.equal('invalid-job');
      expect(err.message).to.contain(path);
    });
  }

  it('a new Job without status, or with null fields, is read', function () {
    const { watched } = binary('add', JSON.stringify(rawJob({ status: null, metadata: { labels: null, annotations: null } })));
    expect(watched.kind).to.equal('job');
  });
});

describe('results: the outcome event (outcomeReply)', function () {
  const recordingOf = (object: RawObject): FinishedRecording => {
    const d = decide('update', binary('update', JSON.stringify(object)).watched, undefined);
    if (d.action !== 'record') throw new Error(`ignored: ${d.detail}`);
    if (!isFinishedRecording(d)) throw new Error(`not finished: ${d.update.state}`);
    return d;
  };

  it('a succeeded Job: binary-mode attributes, stable id, the item\'s id and source as extensions, JSON data', function () {
    const reply = outcomeReply(recordingOf(rawJob()), 'job-robot');
    expect(reply.type).to.equal(JOB_SUCCEEDED_TYPE);
    expect(reply.id).to.equal(`${UID}.succeeded`);
    expect(reply.headers).to.deep.equal({
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': `${UID}.succeeded`,
      'ce-source': '/job-robot/jobs/results',
      'ce-type': 'dev.job-robot.job.succeeded',
      'ce-subject': 'job-robot-5f2e',
      'ce-time': '2026-11-28T12:01:00.000Z',
      'ce-jobrobotid': 'item-7',
      'ce-jobrobotsource': 'redis://redis:6379/0/job-robot:queue',
      'ce-jobrobot': 'job-robot',
    });
    expect(reply.data).to.deep.equal({
      id: 'item-7',
      source: 'redis://redis:6379/0/job-robot:queue',
      job: 'job-robot-5f2e',
      state: 'succeeded',
      reason: 'CompletionsReached',
      message: 'Reached expected number of succeeded pods',
      created: '2026-11-28T12:00:00.000Z',
      finished: '2026-11-28T12:01:00.000Z',
    });
  });

  it('round trip: the reply read back as a CloudEvent carries the same attributes, even ones that need percent-encoding', function () {
    const object = rawJob({ metadata: { annotations: { [EVENT_ID_ANNOTATION]: 'ïtem 7 "quoted" 100%', [EVENT_SOURCE_ANNOTATION]: '/queue/ünïcode source' } } });
    const reply = outcomeReply(recordingOf(object), 'blue');
    const [event] = eventsFromRequest(reply.headers, Buffer.from(JSON.stringify(reply.data)));
    expect(event!.id).to.equal(`${UID}.succeeded`);
    expect(event!['jobrobotid']).to.equal('ïtem 7 "quoted" 100%');
    expect(event!['jobrobotsource']).to.equal('/queue/ünïcode source');
    expect(event!['jobrobot']).to.equal('blue');
    expect(event!.data).to.deep.equal(reply.data);
  });

  it('a failed Job: dev.job-robot.job.failed, its own id, the condition\'s reason and message; a long message is cut as the record cuts it', function () {
    const long = 'x'.repeat(MAX_MESSAGE_CHARS + 50);
    const status = { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: long, lastTransitionTime: '2026-11-28T12:02:00Z' }] };
    const reply = outcomeReply(recordingOf(rawJob({ status })), 'job-robot');
    expect(reply.type).to.equal(JOB_FAILED_TYPE);
    expect(reply.id).to.equal(`${UID}.failed`);
    expect(reply.data.reason).to.equal('BackoffLimitExceeded');
    expect(reply.data.message).to.have.length(MAX_MESSAGE_CHARS);
    expect(reply.data.message!.endsWith('…')).to.equal(true);
  });

  it('only succeeded and failed are outcomes (not created, not dead-lettered, not inherited names)', function () {
    expect(['succeeded', 'failed', 'created', 'dead-lettered', 'constructor', 'toString'].map(isFinished)).to.deep.equal([true, true, false, false, false, false]);
  });
});
