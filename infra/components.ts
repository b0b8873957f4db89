import { join } from 'node:path';
import { ensureComponent } from './cache';
import { builtFromWrapper, ensureGoBinary, goInstalled } from './go-install';
import { kwokStagesComponent } from './kubernetes/kwok-stages';

/**
 * Pinned versions of every real component Baton's demo and tests run. The Temporal CLI stays at v1.5.1: later
 * tags carry a `replace` directive in go.mod, which `go install module@version` refuses.
 */
export const versions = {
  temporalCli: 'v1.5.1',
} as const;

export function ensureTemporalCli(): Promise<string> {
  return ensureGoBinary({
    name: 'temporal-cli',
    module: 'github.com/temporalio/cli/cmd/temporal',
    version: versions.temporalCli,
    binary: 'temporal',
  });
}

/** Kubernetes control plane, etcd and kwok, pinned; Kubernetes and etcd are built through wrapper modules. */
export const kubernetesVersions = {
  kubernetes: 'v1.36.3',
  etcd: 'v3.6.16',
  kwok: 'v0.8.0',
} as const;

const kubernetesVersionFlags = (() => {
  const [major, minor] = kubernetesVersions.kubernetes.slice(1).split('.');
  const pkg = 'k8s.io/component-base/version';
  return [
    `-X ${pkg}.gitVersion=${kubernetesVersions.kubernetes}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
    `-X k8s.io/client-go/pkg/version.gitVersion=${kubernetesVersions.kubernetes}`,
  ].join(' ');
})();

export interface KubernetesBinaries {
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubeScheduler: string;
  readonly kubectl: string;
  /** A real node's agents, for clusters that run real pods beside kwok's. */
  readonly kubelet: string;
  readonly kubeProxy: string;
  readonly etcd: string;
  readonly kwok: string;
  readonly kwokctl: string;
  /** kwok's default stage files at the pinned version, for clusters that change how pods behave. */
  readonly kwokStages: string;
}

/** Builds (once, cached) everything a local Kubernetes control plane with kwok nodes needs. */
export async function ensureKubernetesBinaries(): Promise<KubernetesBinaries> {
  const kube = await ensureComponent(
    builtFromWrapper({
      name: 'kubernetes',
      version: kubernetesVersions.kubernetes,
      wrapperDir: join(__dirname, 'kubernetes', 'tools'),
      binaries: {
        'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
        'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
        'kube-scheduler': 'k8s.io/kubernetes/cmd/kube-scheduler',
        kubectl: 'k8s.io/kubernetes/cmd/kubectl',
        kubelet: 'k8s.io/kubernetes/cmd/kubelet',
        'kube-proxy': 'k8s.io/kubernetes/cmd/kube-proxy',
      },
      ldflags: kubernetesVersionFlags,
    }),
  );
  const etcd = await ensureComponent(
    builtFromWrapper({
      name: 'etcd',
      version: kubernetesVersions.etcd,
      wrapperDir: join(__dirname, 'kubernetes', 'etcd'),
      binaries: { etcd: 'go.etcd.io/etcd/server/v3' },
    }),
  );
  const kwok = await ensureComponent(
    goInstalled({
      name: 'kwok',
      module: 'sigs.k8s.io/kwok/cmd/kwok',
      extraPackages: ['sigs.k8s.io/kwok/cmd/kwokctl'],
      version: kubernetesVersions.kwok,
      binary: 'kwok',
      env: { CGO_ENABLED: '0' },
    }),
  );
  const kwokStages = await ensureComponent(kwokStagesComponent(kubernetesVersions.kwok));
  return {
    kubeApiserver: join(kube, 'bin', 'kube-apiserver'),
    kubeControllerManager: join(kube, 'bin', 'kube-controller-manager'),
    kubeScheduler: join(kube, 'bin', 'kube-scheduler'),
    kubectl: join(kube, 'bin', 'kubectl'),
    kubelet: join(kube, 'bin', 'kubelet'),
    kubeProxy: join(kube, 'bin', 'kube-proxy'),
    etcd: join(etcd, 'bin', 'etcd'),
    kwok: join(kwok, 'bin', 'kwok'),
    kwokctl: join(kwok, 'bin', 'kwokctl'),
    kwokStages: join(kwokStages, 'stages'),
  };
}

/** compose-spec/compose-go, the loader `docker compose` uses, pinned: tests check docker-compose.yml with it. */
export const composeGoVersion = 'v2.16.2';

export async function ensureComposeCheck(): Promise<string> {
  const dir = await ensureComponent(
    builtFromWrapper({
      name: 'compose-check',
      version: composeGoVersion,
      wrapperDir: join(__dirname, 'compose-check'),
      binaries: { 'compose-check': '.' },
    }),
  );
  return join(dir, 'bin', 'compose-check');
}
