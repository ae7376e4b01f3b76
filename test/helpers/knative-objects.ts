/**
 * The Broker and Trigger of config/broker.yaml in a test namespace, with the status Knative's
 * eventing controller would give them, and the in-memory channel it would create for the Broker
 * with the Trigger's Subscription written into it. Events then take the cluster's path from the
 * channel on: channel dispatcher → broker filter → launcher, dead letters → dead-letter sink; and,
 * when the plane runs the broker ingress, from the Broker's address on: ingress → channel → ….
 *
 * What the broker ingress reads of the Broker (knative.dev/eventing pkg/broker/ingress
 * ingress_handler.go): the Broker from its informer by the request path `/<namespace>/<name>`; the
 * channel's address from the status annotation `knative.dev/channelAddress` (and, with OIDC, its
 * audience from `knative.dev/channelAudience`), which the Broker reconciler copies from the
 * channel's status (pkg/reconciler/broker/broker.go); with OIDC, the Broker's own audience
 * (`status.address.audience`) and `status.policies`. routeBroker writes those as that reconciler
 * would; `status.policies` stays empty, as it does when no EventPolicy names the Broker (then
 * config-features' default-authorization-mode decides).
 */
import { CustomObjectsApi, type KubernetesObject } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { DISPATCHER_PORTS, type KnativePlane } from './knative-plane.ts';
import { ClusterNames, type Exchange } from './knative-names.ts';
import { eventually, parseManifests } from './kube.ts';
import { readRepoFile } from './paths.ts';
import { ensureServiceAccount, mintToken } from './tokens.ts';
import { childName, oidcServiceAccount } from '../../function/auth/senders.ts';

/** The delivery fields a Trigger (and so its Subscription) carries. */
export interface Delivery {
  retry?: number;
  backoffPolicy?: 'linear' | 'exponential';
  backoffDelay?: string;
  timeout?: string;
  retryAfterMax?: string;
}

interface KObject extends KubernetesObject {
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export interface BrokerRoute {
  namespace: string;
  trigger: KObject;
  /** The Broker's address, as its status gives it: `http://broker-ingress.<system>.svc.cluster.local/<ns>/<broker>`. */
  brokerUrl: string;
  /**
   * The same Broker at the ingress's local port, for senders that do not go through the
   * cluster-names proxy (the bridge: a Node process with its own HTTP agent, which reads no
   * HTTP_PROXY). Undefined when the plane runs no ingress.
   */
  localBrokerUrl: string | undefined;
  /** `http://<broker>-kne-trigger-kn-channel.<ns>.svc.cluster.local`: where the broker ingress posts. */
  channelUrl: string;
  launcherUrl: string;
  sinkUrl: string;
  /**
   * Posts a binary-mode CloudEvent to the channel as the broker ingress does (with the
   * `knativebrokerttl` extension it adds), through the cluster names; returns the channel's answer.
   */
  publish(headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }>;
  /** The requests for event `id` that reached the launcher, the filter, or the dead-letter sink, in order. */
  toLauncher(id: string): Exchange[];
  toFilter(id: string): Exchange[];
  toSink(id: string): Exchange[];
  /** The requests for event `id` that reached the Broker's channel (from the ingress, or publish()). */
  toChannel(id: string): Exchange[];
  /** Deletes the channel (waiting until the dispatcher released it), the Trigger and the Broker. */
  remove(): Promise<void>;
}

const EVENTING = { group: 'eventing.knative.dev', version: 'v1' };
/** The audience the broker filter verifies (knative.dev/eventing pkg/broker/filter FilterAudience). */
const FILTER_AUDIENCE = 'mt-broker-filter';

const audienceOf = (destination: { audience?: string } | undefined): string => {
  if (!destination?.audience) throw new Error('config/broker.yaml: a destination names no OIDC audience');
  return destination.audience;
};

/**
 * The Trigger's Subscription as the controller would make it with OIDC on: the filter finds it by
 * name and verifies the channel's token against its identity.
 */
async function createSubscription(plane: KnativePlane, namespace: string, name: string, identity: string, channel: string, subscriberUri: string): Promise<void> {
  const api = plane.admin.makeApiClient(CustomObjectsApi);
  await ensureServiceAccount(plane.admin, namespace, identity);
  const created = (await api.createNamespacedCustomObject({
    ...MESSAGING,
    namespace,
    plural: 'subscriptions',
    body: {
      apiVersion: 'messaging.knative.dev/v1',
      kind: 'Subscription',
      metadata: { name, namespace },
      spec: { channel: { apiVersion: 'messaging.knative.dev/v1', kind: 'InMemoryChannel', name: channel }, subscriber: { uri: subscriberUri } },
    },
  })) as KObject;
  created.status = { observedGeneration: created.metadata!.generation, auth: { serviceAccountName: identity }, conditions: ready(['AddedToChannel', 'ChannelReady', 'OIDCIdentityCreated', 'ReferencesResolved']) };
  await api.replaceNamespacedCustomObjectStatus({ ...MESSAGING, namespace, plural: 'subscriptions', name, body: created });
}
const MESSAGING = { group: 'messaging.knative.dev', version: 'v1' };

const ready = (types: string[]) => {
  const lastTransitionTime = new Date().toISOString();
  return [...types, 'Ready'].map((type) => ({ type, status: 'True', lastTransitionTime }));
};

/** The Broker and Trigger documents of config/broker.yaml. */
function shipped(): { broker: KObject; trigger: KObject } {
  const docs = parseManifests(readRepoFile('config/broker.yaml')) as KObject[];
  const broker = docs.find((d) => d.kind === 'Broker');
  const trigger = docs.find((d) => d.kind === 'Trigger');
  if (!broker || !trigger) throw new Error('config/broker.yaml holds no Broker or no Trigger');
  return { broker, trigger };
}

/**
 * Creates config/broker.yaml's Broker and Trigger in `namespace` with `delivery` over the
 * Trigger's (its retry span is an hour; tests need seconds), resolves the launcher and the
 * dead-letter sink to local ports by their Knative Service names, fills in the status the eventing
 * controller would, and wires the Broker's channel. Resolves once the dispatcher and the filter
 * both serve the Trigger.
 */
export async function routeBroker(
  plane: KnativePlane,
  namespace: string,
  opts: { launcherPort: number; sinkPort: number; delivery: Delivery; triggerName?: string; oidc?: boolean },
): Promise<BrokerRoute> {
  const oidc = opts.oidc === true;
  const api = plane.admin.makeApiClient(CustomObjectsApi);
  const { broker: brokerDoc, trigger: triggerDoc } = shipped();
  const brokerName = brokerDoc.metadata!.name!;
  const launcherUrl = ClusterNames.url('job-robot-launcher', namespace);
  const sinkUrl = ClusterNames.url('job-robot-dead-letter', namespace);
  const brokerUrl = `${plane.ingressUrl}/${namespace}/${brokerName}`;
  const channelName = `${brokerName}-kne-trigger`;
  const channelUrl = ClusterNames.url(`${channelName}-kn-channel`, namespace);
  const channelAudience = `messaging.knative.dev/inmemorychannel/${namespace}/${channelName}`;
  const brokerAudience = `eventing.knative.dev/broker/${namespace}/${brokerName}`;
  plane.names.set(new URL(launcherUrl).hostname, opts.launcherPort);
  plane.names.set(new URL(sinkUrl).hostname, opts.sinkPort);
  plane.names.set(new URL(channelUrl).hostname, DISPATCHER_PORTS[0]);

  const setStatus = async (plural: string, group: { group: string; version: string }, obj: KObject, status: Record<string, unknown>) => {
    const current = (await api.getNamespacedCustomObject({ ...group, namespace, plural, name: obj.metadata!.name! })) as KObject;
    current.status = { observedGeneration: current.metadata!.generation, ...status };
    return (await api.replaceNamespacedCustomObjectStatus({ ...group, namespace, plural, name: obj.metadata!.name!, body: current })) as KObject;
  };

  const brokerBody: KObject = { ...brokerDoc, metadata: { ...brokerDoc.metadata, namespace } };
  const broker = (await api.createNamespacedCustomObject({ ...EVENTING, namespace, plural: 'brokers', body: brokerBody })) as KObject;
  // With OIDC, the reconciler gives the Broker its audience and copies the channel's.
  const address = { name: 'http', url: brokerUrl, ...(oidc ? { audience: brokerAudience } : {}) };
  await setStatus('brokers', EVENTING, broker, {
    address,
    addresses: [address],
    annotations: {
      'knative.dev/channelAddress': channelUrl,
      'knative.dev/channelAPIVersion': 'messaging.knative.dev/v1',
      'knative.dev/channelKind': 'InMemoryChannel',
      'knative.dev/channelName': channelName,
      ...(oidc ? { 'knative.dev/channelAudience': channelAudience } : {}),
    },
    deadLetterSinkUri: sinkUrl,
    ...(oidc ? { deadLetterSinkAudience: audienceOf((brokerDoc.spec as { delivery?: { deadLetterSink?: { audience?: string } } }).delivery?.deadLetterSink) } : {}),
    conditions: ready(['Addressable', 'DeadLetterSinkResolved', 'EventPoliciesReady', 'FilterReady', 'IngressReady', 'TriggerChannelReady']),
  });

  const triggerSpec = triggerDoc.spec as { delivery?: Record<string, unknown> };
  const delivery: Record<string, unknown> = { ...triggerSpec.delivery, ...opts.delivery };
  const triggerBody: KObject = {
    ...triggerDoc,
    metadata: { ...triggerDoc.metadata, namespace, ...(opts.triggerName ? { name: opts.triggerName } : {}) },
    spec: { ...triggerDoc.spec, delivery },
  };
  let trigger = (await api.createNamespacedCustomObject({ ...EVENTING, namespace, plural: 'triggers', body: triggerBody })) as KObject;
  // With OIDC, the controller gives the Trigger its identity and copies the audiences its
  // destinations name (config/broker.yaml) into its status; the filter sends with them.
  const triggerIdentity = oidcServiceAccount(trigger.metadata!.name!, 'eventing.knative.dev', 'trigger');
  if (oidc) await ensureServiceAccount(plane.admin, namespace, triggerIdentity);
  const triggerDestinations = triggerDoc.spec as { subscriber?: { audience?: string }; delivery?: { deadLetterSink?: { audience?: string } } };
  trigger = await setStatus('triggers', EVENTING, trigger, {
    subscriberUri: launcherUrl,
    deadLetterSinkUri: sinkUrl,
    ...(oidc
      ? {
          auth: { serviceAccountName: triggerIdentity },
          subscriberAudience: audienceOf(triggerDestinations.subscriber),
          deadLetterSinkAudience: audienceOf(triggerDestinations.delivery?.deadLetterSink),
        }
      : {}),
    conditions: ready(['BrokerReady', 'DeadLetterSinkResolved', 'DependencyReady', 'OIDCIdentityCreated', 'SubscriberResolved', 'SubscriptionReady']),
  });

  // What the Trigger's Subscription puts into the Broker's channel. OIDC off: the filter's path
  // for this Trigger as subscriber, the Broker as reply, the Trigger's delivery with its
  // dead-letter sink resolved. OIDC on (knative.dev/eventing pkg/reconciler/broker/trigger
  // subscribeToBrokerChannel): the filter's paths for subscriber, reply and dead letters, each
  // with the filter's audience, and the Subscription's own identity, which the filter verifies.
  const { deadLetterSink: _ref, ...deliveryFields } = delivery;
  const triggerPath = `/triggers/${namespace}/${trigger.metadata!.name}/${trigger.metadata!.uid}`;
  const subscriptionName = childName(`${brokerName}-${trigger.metadata!.name}-`, trigger.metadata!.uid!);
  const subscriptionIdentity = oidcServiceAccount(subscriptionName, 'messaging.knative.dev', 'subscription');
  if (oidc) await createSubscription(plane, namespace, subscriptionName, subscriptionIdentity, channelName, `${plane.filterUrl}${triggerPath}`);
  const subscriber = oidc
    ? {
        subscriberUri: `${plane.filterUrl}${triggerPath}`,
        subscriberAudience: FILTER_AUDIENCE,
        replyUri: `${plane.filterUrl}${triggerPath}/reply`,
        replyAudience: FILTER_AUDIENCE,
        delivery: { ...deliveryFields, deadLetterSink: { uri: `${plane.filterUrl}${triggerPath}/dls`, audience: FILTER_AUDIENCE } },
        auth: { serviceAccountName: subscriptionIdentity },
      }
    : { subscriberUri: `${plane.filterUrl}${triggerPath}`, replyUri: brokerUrl, delivery: { ...deliveryFields, deadLetterSink: { uri: sinkUrl } } };
  const channel = (await api.createNamespacedCustomObject({
    ...MESSAGING,
    namespace,
    plural: 'inmemorychannels',
    body: {
      apiVersion: 'messaging.knative.dev/v1',
      kind: 'InMemoryChannel',
      metadata: {
        name: channelName,
        namespace,
        ownerReferences: [{ apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', name: brokerName, uid: broker.metadata!.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec: {
        subscribers: [
          { uid: randomUUID(), generation: 1, ...subscriber },
        ],
      },
    },
  })) as KObject;
  await setStatus('inmemorychannels', MESSAGING, channel, {
    address: { name: 'http', url: channelUrl, ...(oidc ? { audience: channelAudience } : {}) },
    addresses: [{ name: 'http', url: channelUrl, ...(oidc ? { audience: channelAudience } : {}) }],
    conditions: ready(['Addressable', 'ChannelServiceReady', 'DeadLetterSinkResolved', 'DispatcherReady', 'EndpointsReady', 'EventPoliciesReady', 'ServiceReady']),
  });

  // The dispatcher marks each subscriber ready once it routes to it.
  await eventually(
    async () => {
      const c = (await api.getNamespacedCustomObject({ ...MESSAGING, namespace, plural: 'inmemorychannels', name: channelName })) as KObject;
      const subs = (c.status?.['subscribers'] ?? []) as Array<{ ready?: string }>;
      return subs[0]?.ready === 'True';
    },
    30_000,
    `the dispatcher to serve channel ${namespace}/${channelName}`,
  );
  // The filter knows the Trigger (and its subscriber) once an event its filter rejects is
  // answered 200 rather than 404.
  await eventually(
    async () => {
      const probe = await plane.names.send(`${plane.filterUrl}${triggerPath}`, {
        headers: {
          ...(oidc ? { authorization: `Bearer ${await mintToken(plane.admin, namespace, subscriptionIdentity, FILTER_AUDIENCE)}` } : {}),
          'ce-specversion': '1.0',
          'ce-id': `probe-${randomUUID()}`,
          'ce-source': '/knative-objects',
          'ce-type': 'dev.job-robot.probe',
          'ce-knativebrokerttl': '255',
        },
        body: '',
      });
      return probe.status === 200;
    },
    30_000,
    `the broker filter to serve Trigger ${namespace}/${trigger.metadata!.name}`,
  );

  // The ingress knows the Broker once an event whose TTL it exhausts is answered 400 (the TTL is
  // checked after the Broker is looked up, and before anything is sent on) rather than 404. The
  // Broker's status was written before the Trigger and the channel, so the ingress's informer has
  // it by now too.
  const ingressPort = plane.ingress?.port;
  const localBrokerUrl = ingressPort === undefined ? undefined : `http://127.0.0.1:${ingressPort}/${namespace}/${brokerName}`;
  if (localBrokerUrl) {
    await eventually(
      async () => {
        const res = await fetch(localBrokerUrl, {
          method: 'POST',
          headers: { 'ce-specversion': '1.0', 'ce-id': `probe-${randomUUID()}`, 'ce-source': '/knative-objects', 'ce-type': 'dev.job-robot.probe', 'ce-knativebrokerttl': '1' },
          body: '',
          signal: AbortSignal.timeout(2_000),
        });
        await res.arrayBuffer();
        return res.status === 400;
      },
      30_000,
      `the broker ingress to serve Broker ${namespace}/${brokerName}`,
    );
  }

  const sent = (url: string, id: string) =>
    plane.names.exchanges.filter((e) => e.host === new URL(url).host && decodeURIComponent(String(e.headers['ce-id'] ?? '')) === id);

  return {
    namespace,
    trigger,
    brokerUrl,
    localBrokerUrl,
    channelUrl,
    launcherUrl,
    sinkUrl,
    toLauncher: (id) => sent(launcherUrl, id),
    toFilter: (id) => sent(plane.filterUrl, id),
    toSink: (id) => sent(sinkUrl, id),
    toChannel: (id) => sent(channelUrl, id),
    async publish(headers, body = '') {
      // With OIDC, the channel takes a token for its audience from a sender of its namespace
      // (default-authorization-mode allow-same-namespace; in a cluster, the Broker's EventPolicy
      // names its ingress).
      const auth: Record<string, string> = oidc ? { authorization: `Bearer ${await mintToken(plane.admin, namespace, 'broker-ingress', channelAudience)}` } : {};
      const res = await plane.names.send(channelUrl, { headers: { 'ce-knativebrokerttl': '255', ...auth, ...headers }, body });
      return { status: res.status, body: res.body };
    },
    async remove() {
      await api.deleteNamespacedCustomObject({ ...MESSAGING, namespace, plural: 'inmemorychannels', name: channelName }).catch(() => undefined);
      await eventually(
        async () => {
          try {
            await api.getNamespacedCustomObject({ ...MESSAGING, namespace, plural: 'inmemorychannels', name: channelName });
            return false;
          } catch {
            return true;
          }
        },
        30_000,
        `channel ${namespace}/${channelName} to be released and deleted`,
      );
      await api.deleteNamespacedCustomObject({ ...EVENTING, namespace, plural: 'triggers', name: trigger.metadata!.name! }).catch(() => undefined);
      await api.deleteNamespacedCustomObject({ ...EVENTING, namespace, plural: 'brokers', name: brokerName }).catch(() => undefined);
      for (const url of [launcherUrl, sinkUrl, channelUrl]) plane.names.delete(new URL(url).hostname);
    },
  };
}

/**
 * Creates config/reaper.yaml's PingSource in `namespace` with `schedule`, its sink (the reaper's
 * Knative Service) resolved to the local port `reaperPort`, and the status the PingSource
 * controller gives a ready source, which the adapter waits for. Returns the sink's cluster URL.
 */
export async function createPingSource(plane: KnativePlane, namespace: string, opts: { reaperPort: number; schedule: string; oidc?: boolean }): Promise<{ name: string; sinkUrl: string }> {
  const api = plane.admin.makeApiClient(CustomObjectsApi);
  const doc = (parseManifests(readRepoFile('config/reaper.yaml')) as KObject[]).find((d) => d.kind === 'PingSource');
  if (!doc) throw new Error('config/reaper.yaml holds no PingSource');
  const name = doc.metadata!.name!;
  const sinkUrl = ClusterNames.url('job-robot-reaper', namespace);
  plane.names.set(new URL(sinkUrl).hostname, opts.reaperPort);
  const group = { group: 'sources.knative.dev', version: 'v1', namespace, plural: 'pingsources' };
  const created = (await api.createNamespacedCustomObject({
    ...group,
    body: { ...doc, metadata: { ...doc.metadata, namespace }, spec: { ...doc.spec, schedule: opts.schedule } },
  })) as KObject;
  // With OIDC, the controller gives the PingSource its identity and copies its sink's audience.
  const identity = oidcServiceAccount(name, 'sources.knative.dev', 'pingsource');
  if (opts.oidc) await ensureServiceAccount(plane.admin, namespace, identity);
  created.status = {
    observedGeneration: created.metadata!.generation,
    sinkUri: sinkUrl,
    ...(opts.oidc ? { sinkAudience: audienceOf((doc.spec as { sink?: { audience?: string } }).sink), auth: { serviceAccountName: identity } } : {}),
    conditions: ready(['Deployed', 'OIDCIdentityCreated', 'SinkProvided']),
  };
  await api.replaceNamespacedCustomObjectStatus({ ...group, name, body: created });
  return { name, sinkUrl };
}
