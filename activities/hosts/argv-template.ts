import type { FleetServer } from '../../spec/rollout';

/**
 * Fills an argv template for one server: each {placeholder} is replaced inside its own argument, so a value can
 * never become a second argument or reach a shell. The spec has already restricted names and versions.
 */
export function renderArgv(template: readonly string[], server: FleetServer, version: string): string[] {
  const [host = '', port = ''] = server.address.split(':');
  return fillArgv(template, { name: server.name, address: server.address, host, port, version });
}

/** Replaces each {placeholder} inside its own argument; an unknown one is an error, never left as text. */
export function fillArgv(template: readonly string[], values: Readonly<Record<string, string>>): string[] {
  return template.map((arg) =>
    arg.replace(/\{([a-z]+)\}/g, (whole, key: string) => {
      const value = values[key];
      if (value === undefined) throw new Error(`unknown placeholder ${whole} in argv template`);
      return value;
    }),
  );
}
