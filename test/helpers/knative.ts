import { ApiextensionsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyManifests, eventually } from './kube.ts';
import { ROOT } from './paths.ts';

const CRD_DIR = join(ROOT, 'test', 'schemas', 'knative-crds');

/**
 * Installs the Knative Serving and Eventing CRDs (vendored, 1.22) into the test API server and
 * waits until each is Established. Idempotent: server-side apply.
 */
export function installKnativeCrds(kc: KubeConfig): Promise<string[]> {
  return installCrdFiles(kc, readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(CRD_DIR, f)));
}

/** Applies the CRDs in `files` (server-side) and waits until each is Established; returns their names. */
export async function installCrdFiles(kc: KubeConfig, files: readonly string[]): Promise<string[]> {
  const names: string[] = [];
  for (const file of files) {
    const applied = await applyManifests(kc, readFileSync(file, 'utf8'));
    names.push(...applied.map((o) => o.metadata!.name!));
  }
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const name of names) {
    await eventually(
      async () => {
        const crd = await ext.readCustomResourceDefinition({ name });
        return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      30_000,
      `CRD ${name} to be Established`,
    );
  }
  return names;
}
