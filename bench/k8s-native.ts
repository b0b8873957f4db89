import type { KubeConfig } from '@kubernetes/client-node';
import { AppsV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { DemoApp } from '../infra/kubernetes/demo-app-objects';
import { delay } from '../infra/processes';

/** What `kubectl set image deployment/web app=…:<version>` then `kubectl rollout status` do. */
export async function nativeRollingUpdate(
  kc: KubeConfig,
  app: DemoApp,
  version: string,
  replicas: number,
): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  await apps.patchNamespacedDeployment(
    {
      namespace: app.namespace,
      name: app.deployment,
      body: {
        spec: {
          template: { spec: { containers: [{ name: app.container, image: `${app.image}:${version}` }] } },
        },
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  const deadline = Date.now() + 180_000;
  for (;;) {
    const d = await apps.readNamespacedDeployment({ namespace: app.namespace, name: app.deployment });
    const s = d.status;
    if (
      (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
      s?.updatedReplicas === replicas &&
      s?.replicas === replicas &&
      s?.availableReplicas === replicas
    )
      return;
    if (Date.now() > deadline)
      throw new Error(`the native update to ${version} did not finish: ${JSON.stringify(s)}`);
    // Often enough that the poll adds little to the time a benchmark measures.
    await delay(50);
  }
}
