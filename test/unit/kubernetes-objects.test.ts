import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import {
  deploymentVersion,
  imageTag,
  podsToRetire,
  retiringPodCost,
  versionDeployment,
  versionDeploymentName,
  versionLabel,
} from '../../activities/kubernetes/objects';

const stable: V1Deployment = {
  metadata: { name: 'web', namespace: 'shop', labels: { app: 'web', team: 'a' } },
  spec: {
    replicas: 4,
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: {
        labels: { app: 'web' },
        annotations: { 'controller.kubernetes.io/pod-deletion-cost': '5' },
      },
      spec: {
        containers: [
          { name: 'app', image: 'registry.local:5000/web:v1' },
          { name: 'proxy', image: 'envoy:1.30' },
        ],
      },
    },
  },
};

const pod = (
  name: string,
  options: { ready?: boolean; created: string; marked?: boolean; deleting?: boolean; replicaSet?: string },
): V1Pod => ({
  metadata: {
    name,
    ownerReferences: [
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: 'rs',
        uid: options.replicaSet ?? 'rs-old',
        controller: true,
      },
    ],
    creationTimestamp: new Date(options.created),
    ...(options.marked
      ? { annotations: { 'controller.kubernetes.io/pod-deletion-cost': retiringPodCost } }
      : {}),
    ...(options.deleting ? { deletionTimestamp: new Date(options.created) } : {}),
  },
  status: { conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }] },
});

describe('Kubernetes objects Baton makes', () => {
  it('names a version Deployment <app>-<version>, hashing versions that had to change to fit', () => {
    assert.equal(versionDeploymentName('web', 'v2'), 'web-v2');
    assert.equal(versionDeploymentName('web', '1.4.0'), 'web-1.4.0');
    assert.match(versionDeploymentName('web', 'V2'), /^web-v2-[0-9a-f]{8}$/);
    assert.notEqual(versionDeploymentName('web', 'V2'), versionDeploymentName('web', 'v2'));
    assert.notEqual(versionDeploymentName('web', '1.0+a'), versionDeploymentName('web', '1.0_a'));
    const long = versionDeploymentName('a'.repeat(60), `v${'9'.repeat(100)}`);
    assert.ok(long.length <= 63 && /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(long), long);
  });

  it('turns any version into a valid label value, keeping valid ones as they are', () => {
    assert.equal(versionLabel('1.4.0_rc1'), '1.4.0_rc1');
    assert.match(versionLabel('1.4.0+build.7'), /^1\.4\.0-build\.7-[0-9a-f]{8}$/);
    assert.ok(versionLabel('x'.repeat(128)).length <= 63);
  });

  it('reads image tags, ignoring registry ports and digests', () => {
    assert.equal(imageTag('registry.local:5000/web:v1'), 'v1');
    assert.equal(imageTag('registry.local:5000/web'), undefined);
    assert.equal(imageTag('web:v1@sha256:abc'), 'v1');
  });

  it('builds the new Deployment from the stable one: same pods, new image, own selector, Baton labels', () => {
    const next = versionDeployment({
      stable,
      app: 'web',
      container: 'app',
      image: 'registry.local:5000/web',
      version: 'v2',
      rollout: 'rollout/web',
      minReadySeconds: 5,
      replicas: 0,
    });
    assert.equal(next.metadata?.name, 'web-v2');
    assert.equal(next.metadata?.namespace, 'shop');
    assert.deepEqual(next.spec?.selector.matchLabels, { 'baton.dev/app': 'web', 'baton.dev/version': 'v2' });
    assert.deepEqual(next.spec?.template.metadata?.labels, {
      app: 'web',
      'app.kubernetes.io/managed-by': 'baton',
      'baton.dev/app': 'web',
      'baton.dev/version': 'v2',
    });
    assert.equal(
      next.spec?.template.metadata?.annotations?.['controller.kubernetes.io/pod-deletion-cost'],
      undefined,
    );
    assert.deepEqual(
      next.spec?.template.spec?.containers.map((c) => c.image),
      ['registry.local:5000/web:v2', 'envoy:1.30'],
    );
    assert.equal(next.spec?.replicas, 0);
    assert.equal(next.spec?.minReadySeconds, 5);
    assert.equal(next.metadata?.annotations?.['baton.dev/rollout'], 'rollout/web');
    assert.equal(deploymentVersion(next, 'app'), 'v2');
    assert.equal(deploymentVersion(stable, 'app'), 'v1');
  });

  it('retires pods a retry already chose first, then unready ones, then the newest; never terminating ones', () => {
    const pods = [
      pod('old-ready', { created: '2026-01-01' }),
      pod('new-ready', { created: '2026-01-03' }),
      pod('unready', { created: '2026-01-02', ready: false }),
      pod('marked', { created: '2026-01-01', marked: true }),
      pod('going', { created: '2026-01-04', deleting: true }),
    ];
    const owned = new Set(['rs-old']);
    assert.deepEqual(
      podsToRetire(pods, 1, owned).map((p) => p.metadata?.name),
      ['marked', 'unready', 'new-ready'],
    );
    assert.deepEqual(podsToRetire(pods, 4, owned), []);
    assert.deepEqual(podsToRetire(pods, 9, owned), []);
  });

  it('counts from the pods that still run, so an earlier step that has not yet gone adds to this one', () => {
    // Scaled from 4 to 3 a moment ago: its marked pod still runs. Down to 2 now takes it and one more.
    const pods = [
      pod('a', { created: '2026-01-01' }),
      pod('b', { created: '2026-01-02' }),
      pod('c', { created: '2026-01-03' }),
      pod('earlier-step', { created: '2026-01-01', marked: true }),
    ];
    assert.deepEqual(
      podsToRetire(pods, 2, new Set(['rs-old'])).map((p) => p.metadata?.name),
      ['earlier-step', 'c'],
    );
  });

  it("retires only the Deployment's own pods, not another version's that its selector also matches", () => {
    const pods = [
      pod('old', { created: '2026-01-01' }),
      pod('new-version', { created: '2026-01-05', replicaSet: 'rs-of-web-v2' }),
      pod('new-version-unready', { created: '2026-01-06', ready: false, replicaSet: 'rs-of-web-v2' }),
    ];
    assert.deepEqual(
      podsToRetire(pods, 0, new Set(['rs-old'])).map((p) => p.metadata?.name),
      ['old'],
    );
  });
});
