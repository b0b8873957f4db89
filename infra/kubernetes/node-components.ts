import { join } from 'node:path';
import { ensureComponent } from '../cache';
import { ensureDebianPackage } from '../debian';
import { builtFromWrapper, goInstalled } from '../go-install';

/** Pinned versions of a real node's parts that do not come with Kubernetes itself. */
export const nodeVersions = {
  containerd: 'v2.4.2',
  cniPlugins: 'v1.10.0',
} as const;

export interface NodeBinaries {
  readonly containerd: string;
  /** containerd finds its runc shim (containerd-shim-runc-v2) on PATH: this folder goes first on it. */
  readonly containerdBinDir: string;
  readonly ctr: string;
  /** bridge, host-local, loopback and portmap. */
  readonly cniBinDir: string;
  /** The pod sandbox's first process, packed into the pause image. */
  readonly pause: string;
  readonly runc: string;
}

/**
 * Builds (once, cached) what a real node needs beside kubelet and kube-proxy: containerd and the CNI plugins
 * from the Go module proxy, a pause program from this repository, and runc, iptables and conntrack from Debian.
 */
export async function ensureNodeBinaries(): Promise<NodeBinaries> {
  const containerd = await ensureComponent(
    goInstalled({
      name: 'containerd',
      module: 'github.com/containerd/containerd/v2/cmd/containerd',
      extraPackages: [
        'github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2',
        'github.com/containerd/containerd/v2/cmd/ctr',
      ],
      version: nodeVersions.containerd,
      binary: 'containerd',
      // Snapshotters that need cgo or kernel features a node here lacks are left out; overlayfs stays.
      env: { CGO_ENABLED: '0', GOFLAGS: '-trimpath -tags=no_btrfs,no_devmapper,no_zfs' },
    }),
  );
  const plugins = 'github.com/containernetworking/plugins/plugins';
  const cni = await ensureComponent(
    goInstalled({
      name: 'cni-plugins',
      module: `${plugins}/main/bridge`,
      extraPackages: [`${plugins}/ipam/host-local`, `${plugins}/main/loopback`, `${plugins}/meta/portmap`],
      version: nodeVersions.cniPlugins,
      binary: 'bridge',
      env: { CGO_ENABLED: '0', GOFLAGS: '-trimpath' },
    }),
  );
  const pause = await ensureComponent(
    builtFromWrapper({
      name: 'pause',
      version: 'v1',
      wrapperDir: join(__dirname, 'pause'),
      binaries: { pause: '.' },
      ldflags: '-s -w',
    }),
  );
  const runc = await ensureDebianPackage('runc', 'runc', '--version');
  // kube-proxy programs Services with iptables-restore, and clears conntrack entries of removed endpoints.
  await ensureDebianPackage('iptables', 'iptables', '--version');
  await ensureDebianPackage('conntrack', 'conntrack', '--version');
  return {
    containerd: join(containerd, 'bin', 'containerd'),
    containerdBinDir: join(containerd, 'bin'),
    ctr: join(containerd, 'bin', 'ctr'),
    cniBinDir: join(cni, 'bin'),
    pause: join(pause, 'bin', 'pause'),
    runc,
  };
}
