import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { ensureComposeCheck } from '../../infra/components';
import { composeFleet, composeHaproxyConfig } from '../../infra/compose/demo-fleet';
import { loadRolloutSpecFile } from '../../spec';
import { searchAttributes } from '../../workflows/messages';

const root = join(__dirname, '..', '..');

interface ComposeProject {
  services: Record<
    string,
    {
      image?: string;
      build?: { context: string; dockerfile: string };
      entrypoint?: string[];
      environment?: Record<string, string>;
      depends_on?: Record<string, { condition: string }>;
      user?: string;
    }
  >;
  volumes: Record<string, unknown>;
}

let composeCheck: string;
before(async () => {
  composeCheck = await ensureComposeCheck();
});

/** Loads a Compose file with compose-go, the loader `docker compose` uses. */
async function load(path: string): Promise<ComposeProject> {
  const { stdout } = await promisify(execFile)(composeCheck, [path], { cwd: root });
  return JSON.parse(stdout) as ComposeProject;
}

describe('docker-compose.yml (checked with compose-go, as `docker compose` loads it)', () => {
  it('loads, with Temporal on PostgreSQL, its UI, the worker with the demo fleet, HAProxy and the CLI', async () => {
    const project = await load(join(root, 'docker-compose.yml'));
    assert.deepEqual(Object.keys(project.services).sort(), [
      'baton',
      'haproxy',
      'postgresql',
      'temporal',
      'temporal-setup',
      'temporal-ui',
      'worker',
    ]);
    const { worker, temporal } = project.services;
    assert.equal(worker?.build?.context, root);
    assert.equal(worker?.environment?.TEMPORAL_ADDRESS, 'temporal:7233');
    assert.equal(worker?.depends_on?.['temporal-setup']?.condition, 'service_completed_successfully');
    assert.equal(temporal?.environment?.DB, 'postgres12');
    assert.equal(project.services.haproxy?.user, '1000:1000', "HAProxy runs as the worker's user");
  });

  it('rejects what docker compose would reject, so the check above means something', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'compose-'));
    try {
      const broken = join(dir, 'docker-compose.yml');
      await writeFile(broken, 'services:\n  a:\n    image: x\n    depends_on: [missing]\n');
      await assert.rejects(load(broken), /missing/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('builds the worker from a multi-stage Dockerfile that runs as a non-root user and copies what exists', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const stages = dockerfile.split('\n').filter((line) => /^FROM /.test(line));
    assert.ok(stages.length >= 2, 'multi-stage');
    const lastStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    assert.match(lastStage, /^USER node$/m);
    for (const line of dockerfile.split('\n').filter((l) => /^COPY (?!--from)/.test(l))) {
      const sources = line.split(/\s+/).slice(1, -1);
      for (const source of sources) assert.ok(existsSync(join(root, source)), `${line}: ${source} exists`);
    }
  });

  it('stays in step with infra/: HAProxy config, search attributes and the demo fleet example', async () => {
    assert.equal(
      readFileSync(join(root, 'deploy', 'compose', 'haproxy.cfg'), 'utf8'),
      composeHaproxyConfig(),
    );
    const project = await load(join(root, 'docker-compose.yml'));
    const setup = project.services['temporal-setup']?.entrypoint ?? [];
    for (const key of Object.values(searchAttributes))
      assert.ok(setup.includes(`--name=${key.name}`), key.name);
    const spec = await loadRolloutSpecFile(join(root, 'examples', 'fleet-compose.yaml'));
    assert.ok(spec.target.kind === 'fleet');
    assert.equal(spec.target.loadBalancer.haproxy.socket, composeFleet.socket);
    assert.deepEqual(
      spec.target.servers.map((s) => ({ name: s.name, address: s.address })),
      composeFleet.servers,
    );
  });
});
