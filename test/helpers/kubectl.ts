import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ensureBinaries } from '../cluster/build.ts';
import { ROOT } from './paths.ts';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the kubectl built from the pinned Kubernetes module (from KUBEBUILDER_ASSETS or the cache). */
export async function kubectl(args: string[], input?: string): Promise<Run> {
  const { kubectl: bin } = await ensureBinaries(['kubectl']);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/**
 * Renders config/ with kustomize, as `kubectl apply -k config/` would; with `namespace`, through
 * an overlay that moves everything into that namespace (RoleBinding subjects included).
 */
export async function renderConfig(namespace?: string): Promise<string> {
  const dir = join(ROOT, 'config');
  if (!namespace) return checked(await kubectl(['kustomize', dir]), 'kubectl kustomize config/');
  const overlay = mkdtempSync(join(tmpdir(), 'job-robot-overlay-'));
  try {
    writeFileSync(
      join(overlay, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${namespace}\nresources:\n  - ${relative(overlay, dir)}\n`,
    );
    return checked(await kubectl(['kustomize', overlay]), 'kubectl kustomize (namespace overlay)');
  } finally {
    rmSync(overlay, { recursive: true, force: true });
  }
}

function checked(run: Run, what: string): string {
  if (run.code !== 0) throw new Error(`${what} failed (${run.code}): ${run.stderr}`);
  return run.stdout;
}
