import { cp, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import type { CachedComponent } from '../cache';
import { runCommand } from '../run-command';

/**
 * kwok's own stage files, copied from its module at the pinned version. kwokctl drops every default stage (node
 * and pod) as soon as a config holds one, so a cluster with custom pod stages must carry the defaults it keeps.
 */
const stageFiles = {
  nodeInitialize: 'kustomize/stage/node/fast/node-initialize.yaml',
  // kwokctl's binary runtime leases nodes (40 s x heartbeat factor 5), so it picks the heartbeat-with-lease
  // variant, whose 600 s delay is above the status update frequency and left as is.
  nodeHeartbeat: 'kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
  podReady: 'kustomize/stage/pod/fast/pod-ready.yaml',
  podComplete: 'kustomize/stage/pod/fast/pod-complete.yaml',
  podDelete: 'kustomize/stage/pod/fast/pod-delete.yaml',
} as const;

export function kwokStagesComponent(version: string): CachedComponent {
  return {
    name: 'kwok-stages',
    version,
    files: Object.values(stageFiles).map((file) => join('stages', file)),
    async build(staging) {
      const output = await runCommand(['go', 'mod', 'download', '-json', `sigs.k8s.io/kwok@${version}`], {
        label: `fetching kwok ${version}'s stage files from the Go module proxy`,
        env: { ...process.env, GOFLAGS: '-mod=mod' },
      });
      const dir = /"Dir":\s*"([^"]+)"/.exec(output)?.[1];
      if (!dir) throw new Error(`go mod download printed no module folder for kwok ${version}:\n${output}`);
      for (const file of Object.values(stageFiles)) {
        await mkdir(join(staging, 'stages', file, '..'), { recursive: true });
        await cp(join(dir, file), join(staging, 'stages', file));
      }
    },
  };
}

export interface PodBehaviour {
  /** How long a new pod stays Pending before kwok makes it Running (and Ready). */
  readonly readyDelayMs: number;
  /** Pods with a container image of this tag become Running but never Ready: a version that fails readiness. */
  readonly brokenTag: string;
}

/** A jq query kwok evaluates on a pod: true when one of its containers runs the broken tag. */
function brokenImageQuery(tag: string): string {
  return `[.spec.containers[].image | endswith(":${tag}")] | any`;
}

/**
 * The stages of a local cluster, as one multi-document YAML for `kwokctl --config`: kwok's defaults, with pods
 * Ready after a delay, except pods of the broken tag, which a twin of pod-ready leaves Running and not Ready.
 */
export async function kwokStagesConfig(stagesDir: string, behaviour: PodBehaviour): Promise<string> {
  const read = (file: string) => readFile(join(stagesDir, file), 'utf8');
  const docs: string[] = [
    await read(stageFiles.nodeInitialize),
    await read(stageFiles.nodeHeartbeat),
    await read(stageFiles.podComplete),
    await read(stageFiles.podDelete),
  ];
  const readyText = await read(stageFiles.podReady);
  const brokenQuery = brokenImageQuery(behaviour.brokenTag);
  const delay = { durationMilliseconds: behaviour.readyDelayMs };

  const ready = parseDocument(readyText).toJS() as StageDocument;
  ready.spec.delay = delay;
  ready.spec.selector.matchExpressions.push({ key: brokenQuery, operator: 'NotIn', values: ['true'] });
  docs.push(stringify(ready));

  const notReady = parseDocument(readyText).toJS() as StageDocument;
  notReady.metadata.name = 'pod-running-not-ready';
  notReady.spec.delay = delay;
  notReady.spec.selector.matchExpressions.push({ key: brokenQuery, operator: 'In', values: ['true'] });
  notReady.spec.next.statusTemplate = notReady.spec.next.statusTemplate
    .replace(
      /status: "True"\n(\s+)type: Ready/,
      'status: "False"\n$1reason: ReadinessProbeFailed\n$1type: Ready',
    )
    .replace(/status: "True"\n(\s+)type: ContainersReady/, 'status: "False"\n$1type: ContainersReady')
    .replace(
      /ready: true\n(\s+)restartCount: 0\n(\s+)state:\n(\s+)running:/,
      'ready: false\n$1restartCount: 0\n$2state:\n$3running:',
    );
  if (
    !notReady.spec.next.statusTemplate.includes('type: Ready') ||
    !/ready: false/.test(notReady.spec.next.statusTemplate)
  )
    throw new Error(
      `kwok's pod-ready stage changed shape; update ${stageFiles.podReady} handling in kwok-stages.ts`,
    );
  docs.push(stringify(notReady));

  // kwokctl's binary runtime starts kwok with --manage-all-nodes; a real kubelet's node must be left to it.
  docs.push(
    stringify({
      apiVersion: 'config.kwok.x-k8s.io/v1alpha1',
      kind: 'KwokctlConfiguration',
      componentsPatches: [
        {
          name: 'kwok-controller',
          extraArgs: [
            { key: 'manage-all-nodes', value: 'false' },
            { key: 'manage-nodes-with-annotation-selector', value: 'kwok.x-k8s.io/node=fake' },
          ],
        },
      ],
    }),
  );
  return docs.map((doc) => doc.trim()).join('\n---\n') + '\n';
}

interface StageDocument {
  metadata: { name: string };
  spec: {
    delay?: { durationMilliseconds: number };
    selector: { matchExpressions: Array<{ key: string; operator: string; values?: string[] }> };
    next: { statusTemplate: string };
  };
}
