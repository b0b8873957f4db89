import { ensureComposeCheck, ensureKubernetesBinaries, ensureTemporalCli } from './components';
import { ensureChromium, ensureDebianPackages } from './debian';
import { ensureHaproxy } from './haproxy';
import { ensureDemoImages } from './kubernetes/demo-image';
import { ensureNodeBinaries } from './kubernetes/node-components';
import { ensurePostgres, postgresMajor } from './postgres';
import { ensureTemporalServer } from './temporal-cluster';

/**
 * Every Debian package a test, the demo or a benchmark runs, installed in one apt-get run before anything else
 * asks for one of them: test files run side by side, and two apt-get runs at once fail on dpkg's lock.
 */
const debianPackages = [
  { pkg: 'haproxy', program: 'haproxy' },
  { pkg: 'chromium', program: 'chromium' },
  { pkg: `postgresql-${postgresMajor}`, program: `/usr/lib/postgresql/${postgresMajor}/bin/postgres` },
  { pkg: 'runc', program: 'runc' },
  { pkg: 'iptables', program: 'iptables' },
  { pkg: 'conntrack', program: 'conntrack' },
  { pkg: 'curl', program: 'curl' },
  { pkg: 'openssl', program: 'openssl' },
] as const;

/** Runs `tasks` at most `limit` at a time, in order, and settles when all have; the first failure is thrown. */
async function limited(limit: number, tasks: readonly (() => Promise<void>)[]): Promise<void> {
  const queue = [...tasks];
  const errors: unknown[] = [];
  const lane = async () => {
    for (let task = queue.shift(); task; task = queue.shift())
      await task().catch((e: unknown) => errors.push(e));
  };
  await Promise.all(Array.from({ length: limit }, lane));
  if (errors.length > 0) throw errors[0];
}

/**
 * Installs every real component that `npm test`, `npm run demo` and `npm run bench` use, into the cache, and
 * returns one line per component. Debian's packages install while the Go programs build, two at a time: a Go build
 * spends part of its time fetching modules, when the other one has the cores. What is already cached costs a stat.
 */
export async function installComponents(): Promise<string[]> {
  const lines = new Map<string, string>();
  const debian = ensureDebianPackages(debianPackages).then(async () => {
    lines.set('haproxy', await ensureHaproxy());
    lines.set('chromium', await ensureChromium());
    lines.set('postgresql', await ensurePostgres());
  });
  // Longest first, so that the last build to finish is a short one.
  const builds = limited(2, [
    async () => void lines.set('kubernetes', (await ensureKubernetesBinaries()).kubeApiserver),
    async () => void lines.set('temporal server', (await ensureTemporalServer()).server),
    async () => void lines.set('temporal', await ensureTemporalCli()),
    async () => {
      // The real node's parts need runc from Debian, and its images need the pause program built here.
      await debian;
      const node = await ensureNodeBinaries();
      lines.set('real node', node.containerd);
      lines.set('demo images', (await ensureDemoImages(node.pause)).demo);
    },
    async () => void lines.set('compose-check', await ensureComposeCheck()),
  ]);
  await Promise.all([debian, builds]);
  const order = [
    'temporal',
    'haproxy',
    'kubernetes',
    'real node',
    'demo images',
    'chromium',
    'compose-check',
    'temporal server',
    'postgresql',
  ];
  return order.map((name) => `${name} ${lines.get(name) ?? '?'}`);
}
