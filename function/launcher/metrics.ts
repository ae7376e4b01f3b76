import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type CreateOutcome = 'created' | 'exists' | 'error';

/** The launcher's Prometheus metrics, registered on the process registry. */
export class LauncherMetrics {
  readonly eventsReceived: Counter;
  readonly jobsCreated: Counter;
  readonly duplicates: Counter;
  readonly rejections: Counter<'reason'>;
  readonly createSeconds: Histogram<'outcome'>;
  readonly activeJobs: Gauge;

  constructor(registry: Registry, activeJobs: () => number | undefined = () => undefined) {
    const registers = [registry];
    this.eventsReceived = new Counter({
      name: 'job_robot_launcher_events_received_total',
      help: 'CloudEvents received (each event of a batch counts)',
      registers,
    });
    this.jobsCreated = new Counter({ name: 'job_robot_launcher_jobs_created_total', help: 'Jobs created', registers });
    this.duplicates = new Counter({
      name: 'job_robot_launcher_duplicates_total',
      help: 'Events whose Job already existed (redeliveries), answered 202 without a second Job',
      registers,
    });
    this.rejections = new Counter({
      name: 'job_robot_launcher_rejections_total',
      help: 'Requests answered with an error, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.createSeconds = new Histogram({
      name: 'job_robot_launcher_create_duration_seconds',
      help: 'Kubernetes Job create calls, by outcome',
      labelNames: ['outcome'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.activeJobs = new Gauge({
      name: 'job_robot_launcher_active_jobs',
      help: 'Active Jobs this launcher owns, as counted against MAX_ACTIVE_JOBS',
      registers,
      collect() {
        const n = activeJobs();
        if (n !== undefined) this.set(n);
      },
    });
  }
}
