/** The Kubernetes API variables the launcher and the reaper share; `.extend()` a schema with them. */
import { envInt } from './base.ts';

export const kubeFields = {
  /** Deadline of each Kubernetes API call. */
  KUBE_TIMEOUT_SECONDS: envInt(1, 300).default(10),
};
