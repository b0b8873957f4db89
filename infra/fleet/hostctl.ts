import { parseArgs } from 'node:util';
import { createHost, destroyHost, logCommand, startHost, stopHost } from './hosts';

/**
 * The host supervisor's command line, what a fleet spec's upgrade argv runs:
 *   hostctl --fleet DIR upgrade NAME VERSION   (stop the running version, start VERSION, wait until it listens)
 *   hostctl --fleet DIR stop NAME
 *   hostctl --fleet DIR create NAME VERSION   (a new host on a free port; prints its host:port last)
 *   hostctl --fleet DIR destroy NAME          (stop it and remove it from the fleet)
 */
async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { fleet: { type: 'string' } },
    allowPositionals: true,
  });
  const [command, name, version] = positionals;
  if (!values.fleet || !command || !name || ((command === 'upgrade' || command === 'create') && !version)) {
    process.stderr.write(
      'usage: hostctl --fleet DIR upgrade NAME VERSION | create NAME VERSION | destroy NAME | stop NAME\n',
    );
    process.exit(2);
  }
  await logCommand(values.fleet, command, name, version);
  if (command === 'upgrade' && version) {
    const outcome = await startHost(values.fleet, name, version);
    process.stdout.write(`${name}: ${version} ${outcome}\n`);
  } else if (command === 'create' && version) {
    const address = await createHost(values.fleet, name, version);
    process.stdout.write(`${name}: ${version} created\n${address}\n`);
  } else if (command === 'destroy') {
    await destroyHost(values.fleet, name);
    process.stdout.write(`${name}: destroyed\n`);
  } else if (command === 'stop') {
    await stopHost(values.fleet, name);
    process.stdout.write(`${name}: stopped\n`);
  } else {
    process.stderr.write(`hostctl: unknown command "${command}"\n`);
    process.exit(2);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`hostctl: ${(error as Error).message}\n`);
  process.exit(1);
});
