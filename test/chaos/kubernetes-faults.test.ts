import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KubeConfig } from '@kubernetes/client-node';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { WorkflowHandle } from '@temporalio/client';
import { realActivityDeps } from '../../activities';
import { kubernetesClients } from '../../activities/kubernetes/api';
import type { RolloutSpecInput } from '../../spec';
import { parseRolloutSpec } from '../../spec';
import type { rolloutWorkflow } from '../../workflows';
import type { FaultRule } from '../helpers/kubernetes-fault-proxy';
import { startFaultProxy } from '../helpers/kubernetes-fault-proxy';
import {
  deploymentsOf,
  seedApp,
  seededAppTarget,
  seededImage as image,
  startTestCluster,
  watchCapacity,
} from '../helpers/kubernetes';
import { startRolloutInProcess } from '../helpers/rollout';
import type { TestTemporal } from '../helpers/temporal';

/**
 * Faults of the Kubernetes API, injected by a proxy between the worker and a real kube-apiserver: conflicts on
 * writes, server errors and throttling on any call, watches cut mid-stream. Given them, a rollout still ends as
 * it would have, with no object made twice and the fence posts held, because every step is a desired state the
 * activity retries (DESIGN.md, decision 2).
 */
let kc: KubeConfig;
let temporal: TestTemporal;
let stop: (() => Promise<void>) | undefined;
before(async () => {
  ({ kc, temporal, stop } = await startTestCluster('baton-faults'));
});
after(() => stop?.());

function spec(namespace: string, version: string, strategy: RolloutSpecInput['strategy']) {
  return parseRolloutSpec({ target: seededAppTarget(namespace, '20s'), version, strategy });
}

const writes = (method: string) => method === 'PUT' || method === 'PATCH';

/** Attempts after the first, per activity type: the retries Temporal ran for the injected faults. */
async function retriedActivities(handle: WorkflowHandle<typeof rolloutWorkflow>): Promise<string[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const types = new Map<string, string>();
  const retried: string[] = [];
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) types.set(String(event.eventId), scheduled.activityType?.name ?? '');
    const started = event.activityTaskStartedEventAttributes;
    if (started && (started.attempt ?? 1) > 1)
      retried.push(types.get(String(started.scheduledEventId)) ?? '');
  }
  return retried;
}

async function replicaSetsByOwner(namespace: string): Promise<Record<string, number>> {
  const sets = await kc.makeApiClient(AppsV1Api).listNamespacedReplicaSet({ namespace });
  const owners: Record<string, number> = {};
  for (const set of sets.items) {
    const owner = set.metadata?.ownerReferences?.[0]?.name ?? '';
    owners[owner] = (owners[owner] ?? 0) + 1;
  }
  return owners;
}

describe('Kubernetes API faults during a rollout (a fault proxy in front of a real control plane)', () => {
  it('rolling: conflicts, 500s, throttling and dropped watches are retried; one object per version, capacity held', async () => {
    const namespace = 'faults-rolling';
    const replicas = 6;
    await seedApp(kc, namespace, { replicas, image });
    const proxy = await startFaultProxy(kc, [
      {
        name: 'conflict on a write',
        when: (r) => writes(r.method),
        every: 2,
        limit: 4,
        fault: { status: 409 },
      },
      {
        name: 'throttled create',
        when: (r) => r.method === 'POST',
        every: 1,
        limit: 1,
        fault: { status: 429 },
      },
      {
        name: 'dropped watch',
        when: (r) => r.watch,
        every: 1,
        limit: 6,
        fault: { dropAfterMs: 300 },
      },
      {
        name: 'server error on a read',
        when: (r) => r.method === 'GET' && !r.watch,
        every: 4,
        limit: 6,
        fault: { status: 500 },
      },
    ] satisfies FaultRule[]);
    const watch = await watchCapacity(kc, namespace, { app: 'web' });
    const { handle, stop: stopWorker } = await startRolloutInProcess(
      temporal,
      { ...realActivityDeps(), kubernetes: () => kubernetesClients(proxy.kc) },
      spec(namespace, 'v2', { type: 'rolling', maxSurge: '25%', maxUnavailable: '25%' }),
    );
    try {
      const result = await handle.result();
      const report = await watch.stop();
      assert.equal(result.phase, 'succeeded', result.reason);
      for (const rule of [
        'conflict on a write',
        'throttled create',
        'dropped watch',
        'server error on a read',
      ])
        assert.ok((proxy.injected[rule] ?? 0) > 0, `the proxy injected "${rule}": ${proxy.log.join('\n')}`);
      const retried = await retriedActivities(handle);
      assert.ok(retried.length > 0, 'some activity ran a second attempt after an injected fault');
      // Nothing made twice: one Deployment per version, each with its one ReplicaSet.
      assert.deepEqual(await deploymentsOf(kc, namespace), {
        web: { replicas: 0, available: 0 },
        'web-v2': { replicas, available: replicas },
      });
      assert.deepEqual(await replicaSetsByOwner(namespace), { web: 1, 'web-v2': 1 });
      // 25% of 6: surge rounds up to 2, unavailable down to 1.
      assert.ok(report.maxPods <= replicas + 2, `up to ${report.maxPods} pods at once`);
      assert.ok(report.minServing >= replicas - 1, `down to ${report.minServing} serving pods`);
    } finally {
      await stopWorker();
      await proxy.close();
    }
  });

  it('blue/green: the Service switch meets conflicts and a 503, and lands once on the new set', async () => {
    const namespace = 'faults-blue-green';
    const replicas = 3;
    await seedApp(kc, namespace, { replicas, image });
    const services = (r: { path: string }) => r.path.includes('/services/');
    const proxy = await startFaultProxy(kc, [
      {
        name: 'conflict on the Service',
        when: (r) => r.method === 'PUT' && services(r),
        every: 1,
        limit: 2,
        fault: { status: 409 },
      },
      {
        name: 'Service unavailable',
        when: (r) => r.method === 'GET' && services(r),
        every: 2,
        limit: 2,
        fault: { status: 503 },
      },
      { name: 'dropped watch', when: (r) => r.watch, every: 1, limit: 4, fault: { dropAfterMs: 300 } },
    ] satisfies FaultRule[]);
    const { handle, stop: stopWorker } = await startRolloutInProcess(
      temporal,
      { ...realActivityDeps(), kubernetes: () => kubernetesClients(proxy.kc) },
      spec(namespace, 'v2', { type: 'blue-green', scaleDownDelay: '1s' }),
    );
    try {
      const result = await handle.result();
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.equal(proxy.injected['conflict on the Service'], 2, proxy.log.join('\n'));
      assert.ok((proxy.injected['Service unavailable'] ?? 0) > 0, proxy.log.join('\n'));
      const service = await kc.makeApiClient(CoreV1Api).readNamespacedService({ namespace, name: 'web' });
      assert.deepEqual(service.spec?.selector, { app: 'web' }, 'the Service has its own selector back');
      assert.deepEqual(await deploymentsOf(kc, namespace), {
        web: { replicas: 0, available: 0 },
        'web-v2': { replicas, available: replicas },
      });
      assert.deepEqual(await replicaSetsByOwner(namespace), { web: 1, 'web-v2': 1 });
    } finally {
      await stopWorker();
      await proxy.close();
    }
  });
});
