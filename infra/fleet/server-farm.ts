import { appendFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DemoServer } from '../demo-app/demo-server';
import { createDemoServer } from '../demo-app/demo-server';
import { delay } from '../processes';
import { logCommand, readFleetFile } from './hosts';

/**
 * Many servers of the demo app in one process, each on its own loopback port with its own version and its own
 * requests in flight: a fleet of hundreds on one machine, where a process each would not fit. Its control port
 * takes what a deploy agent on each host would:
 *   POST /upgrade/<name>/<version>   logged to commands.log, then that server stops as a process would on
 *                                    SIGTERM (finishing its requests), boots for the version's startupMs and
 *                                    listens again on the same port; answers once it does
 *   GET /versions                    every server's version
 * Each start is written to the starts log and to hosts/<name>.json with this process's pid, as a host process
 * writes them, so the fleet's readers (hostVersions, countStarts) and its sweep work on a farm too.
 */
const { values } = parseArgs({
  options: {
    fleet: { type: 'string' },
    version: { type: 'string' },
    'control-port': { type: 'string' },
    'starts-log': { type: 'string' },
  },
});
const fleetDir = values.fleet ?? '';
const startsLog = values['starts-log'] ?? '';

interface Running {
  version: string;
  app: DemoServer;
  /** An upgrade in progress, which the next one for the server waits for. */
  busy: Promise<unknown>;
}

async function main(): Promise<void> {
  const fleet = await readFleetFile(fleetDir);
  const servers = new Map<string, Running>();
  const addresses = new Map(fleet.servers.map((s) => [s.name, s.address]));

  const listen = async (name: string, version: string): Promise<DemoServer> => {
    const behaviour = fleet.versions[version] ?? fleet.defaults;
    const app = createDemoServer({ name, version, ...behaviour });
    const [host = '127.0.0.1', port = ''] = (addresses.get(name) ?? '').split(':');
    await new Promise<void>((resolve, reject) => {
      app.server.once('error', reject);
      app.server.listen(Number(port), host, () => resolve());
    });
    await appendFile(
      startsLog,
      `${JSON.stringify({ time: new Date().toISOString(), name, version, pid: process.pid })}\n`,
    );
    await writeFile(join(fleetDir, 'hosts', `${name}.json`), JSON.stringify({ pid: process.pid, version }));
    return app;
  };

  const upgrade = async (name: string, version: string): Promise<string> => {
    const running = servers.get(name);
    if (!running) throw new Error(`no server named ${name}`);
    await logCommand(fleetDir, 'upgrade', name, version);
    const work = running.busy.then(async () => {
      if (running.version === version) return `${name}: ${version} already running`;
      await running.app.shutdown(0);
      await delay((fleet.versions[version] ?? fleet.defaults).startupMs);
      running.app = await listen(name, version);
      running.version = version;
      return `${name}: ${version} started`;
    });
    running.busy = work.catch(() => undefined);
    return work;
  };

  await Promise.all(
    fleet.servers.map(async ({ name }) => {
      servers.set(name, {
        version: values.version ?? 'v1',
        app: await listen(name, values.version ?? 'v1'),
        busy: Promise.resolve(),
      });
    }),
  );

  const control = createServer((req, res) => {
    const [, verb, name = '', version = ''] = (req.url ?? '').split('/').map(decodeURIComponent);
    const answer = (code: number, text: string) => {
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(`${text}\n`);
    };
    if (req.method === 'GET' && verb === 'versions')
      return answer(200, JSON.stringify(Object.fromEntries([...servers].map(([n, s]) => [n, s.version]))));
    if (req.method === 'POST' && verb === 'upgrade' && /^[\w.-]+$/.test(version))
      return void upgrade(name, version).then(
        (text) => answer(200, text),
        (error: Error) => answer(404, error.message),
      );
    answer(400, 'expected POST /upgrade/<name>/<version> or GET /versions');
  });
  control.listen(Number(values['control-port']), '127.0.0.1');

  const stop = async () => {
    control.close();
    await Promise.all([...servers.values()].map((server) => server.app.shutdown(0)));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((error: unknown) => {
  process.stderr.write(`server farm: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
