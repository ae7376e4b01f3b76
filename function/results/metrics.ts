/** The results function's Prometheus metrics: records moved forward, outcome replies, events ignored, refusals. */
import { Counter, type Registry } from 'prom-client';

export class ResultsMetrics {
  readonly recorded: Counter<'state'>;
  readonly replies: Counter<'type'>;
  readonly ignored: Counter<'reason'>;
  readonly rejections: Counter<'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.recorded = new Counter({
      name: 'job_robot_results_recorded_total',
      help: 'Result records moved forward by a Job event, by the state they reached (a redelivery or an older event moves nothing)',
      labelNames: ['state'],
      registers,
    });
    this.replies = new Counter({
      name: 'job_robot_results_replies_total',
      help: 'Outcome events answered to the Broker, by CloudEvent type',
      labelNames: ['type'],
      registers,
    });
    this.ignored = new Counter({
      name: 'job_robot_results_ignored_total',
      help: 'Events about objects that are not this job-robot\'s Jobs for a queue item, answered 202 and left alone, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.rejections = new Counter({
      name: 'job_robot_results_rejections_total',
      help: 'Requests answered with an error, by reason',
      labelNames: ['reason'],
      registers,
    });
  }
}
