import { createFleetActivities } from './fleet-activities';
import { HaproxyTrafficProvider } from './haproxy/traffic-provider';
import { ExecHostExecutor } from './hosts/exec-host-executor';
import { defaultKubernetesClients } from './kubernetes/api';
import { createKubernetesActivities } from './kubernetes/kubernetes-activities';
import { HttpMetricsReader } from './metrics/http-metrics-reader';
import { sendWebhook } from './notify/webhook';
import { awaitWorkflowEnd } from './temporal/workflow-end';
import type { ActivityDeps } from './ports';
import { HttpVerifier } from './verify/http-verifier';

export type { ActivityDeps } from './ports';

/** Every activity Baton's workflows call, built from the dependencies the caller wires. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createFleetActivities(deps),
    ...createKubernetesActivities(deps),
    sendWebhook,
    awaitWorkflowEnd,
  };
}

export type Activities = ReturnType<typeof createActivities>;

/**
 * The production wiring: HAProxy over its admin socket, commands with execFile, checks over HTTP, Kubernetes
 * through the kubeconfig kubectl would use.
 */
export function realActivityDeps(): ActivityDeps {
  // One provider per backend for the worker's life: it keeps the backend's server ids and which HAProxy process
  // it last found holding every drain, so a step's checks read only its own servers.
  const providers = new Map<string, HaproxyTrafficProvider>();
  return {
    trafficFor: (lb) => {
      const key = JSON.stringify([lb.socket, lb.backend]);
      let provider = providers.get(key);
      if (!provider) providers.set(key, (provider = new HaproxyTrafficProvider(lb.socket, lb.backend)));
      return provider;
    },
    hosts: new ExecHostExecutor(),
    verifier: new HttpVerifier(),
    metrics: new HttpMetricsReader(),
    kubernetes: defaultKubernetesClients,
  };
}
