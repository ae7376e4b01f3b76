/** The bridge's Prometheus metrics, `job_robot_bridge_*`, on the shared registry. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface BridgeGauges {
  /** Items waiting in Redis; undefined when Redis cannot answer right now. */
  depth(): Promise<number | undefined>;
  inFlight(): number;
  /** Seconds since the oldest claim this replica holds was taken, 0 when none. */
  oldestClaimAge(): number;
}

export class BridgeMetrics {
  readonly claimed: Counter<'how'>;
  readonly delivered: Counter;
  readonly retried: Counter<'reason'>;
  readonly deadLettered: Counter<'reason'>;
  readonly deliverySeconds: Histogram;
  readonly unreplicated: Counter;
  readonly tokenReloads: Counter<'result'>;
  readonly identityRefusals: Counter<'status'>;

  constructor(registry: Registry, gauges: BridgeGauges) {
    const registers = [registry];
    this.claimed = new Counter({
      name: 'job_robot_bridge_claimed_total',
      help: 'Items claimed: new from the queue, recovered after a restart, or adopted from a dead consumer',
      labelNames: ['how'],
      registers,
    });
    this.unreplicated = new Counter({
      name: 'job_robot_bridge_unreplicated_claims_total',
      help: 'Items sent before CLAIM_WAIT_REPLICAS replicas acknowledged their claim (a failover then could give them new ids)',
      registers,
    });
    this.delivered = new Counter({ name: 'job_robot_bridge_delivered_total', help: 'Items the sink accepted (2xx)', registers });
    this.retried = new Counter({
      name: 'job_robot_bridge_retried_total',
      help: 'Delivery attempts that will be retried, by class',
      labelNames: ['reason'],
      registers,
    });
    this.deadLettered = new Counter({
      name: 'job_robot_bridge_dead_lettered_total',
      help: 'Items moved to the dead-letter stream, by class',
      labelNames: ['reason'],
      registers,
    });
    this.tokenReloads = new Counter({
      name: 'job_robot_bridge_token_reloads_total',
      help: 'Changes of OIDC_TOKEN_FILE seen: read and used (rotated), or unreadable, the last good token kept (failed)',
      labelNames: ['result'],
      registers,
    });
    this.identityRefusals = new Counter({
      name: 'job_robot_bridge_sink_identity_refusals_total',
      help: "Answers refusing the bridge's identity (401: no or bad token; 403: sender not allowed); the items are retried",
      labelNames: ['status'],
      registers,
    });
    this.deliverySeconds = new Histogram({
      name: 'job_robot_bridge_delivery_seconds',
      help: 'From claim to the sink accepting the item',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    new Gauge({
      name: 'job_robot_bridge_queue_depth',
      help: 'Items waiting in the Redis queue (stream mode: the group lag)',
      registers,
      async collect() {
        const depth = await gauges.depth();
        if (depth !== undefined) this.set(depth);
      },
    });
    new Gauge({
      name: 'job_robot_bridge_in_flight',
      help: 'Items this replica holds: being sent, waiting to retry, or waiting for a slot',
      registers,
      collect() {
        this.set(gauges.inFlight());
      },
    });
    new Gauge({
      name: 'job_robot_bridge_oldest_claim_age_seconds',
      help: 'Age of the oldest claim this replica holds',
      registers,
      collect() {
        this.set(gauges.oldestClaimAge());
      },
    });
  }
}
