import fc from 'fast-check';
import { hiddenCharacterIn } from '../../spec/text';
import { minimalFleetSpecInput } from './specs';

/** A valid fleet spec with every field written out; hostile-input tests break it in one place. */
export const valid = () => {
  const minimal = minimalFleetSpecInput();
  return {
    ...minimal,
    target: { ...minimal.target, upgrade: { ...minimal.target.upgrade, timeout: '1m' } },
    strategy: { type: 'rolling', batchSize: 1, maxUnavailable: 1, pauseBetweenBatches: '0s' },
    drain: { timeout: '30s', onTimeout: 'fail', pollInterval: '250ms' },
    verify: {
      http: {
        path: '/healthz',
        expectStatus: 200,
        passes: 3,
        interval: '1s',
        timeout: '30s',
        requestTimeout: '2s',
      },
    },
    failureBudget: { maxFailPercent: 0 },
  };
};

export type Json = Record<string, unknown>;

/** Leaves of the valid spec: where a wrong value can go. */
export const leaves: ReadonlyArray<readonly (string | number)[]> = [
  ['target', 'kind'],
  ['target', 'name'],
  ['target', 'loadBalancer', 'haproxy', 'socket'],
  ['target', 'loadBalancer', 'haproxy', 'backend'],
  ['target', 'servers', 0, 'name'],
  ['target', 'servers', 1, 'address'],
  ['target', 'upgrade', 'argv'],
  ['target', 'upgrade', 'timeout'],
  ['version'],
  ['strategy', 'type'],
  ['strategy', 'batchSize'],
  ['strategy', 'maxUnavailable'],
  ['strategy', 'pauseBetweenBatches'],
  ['drain', 'timeout'],
  ['drain', 'onTimeout'],
  ['verify', 'http', 'path'],
  ['verify', 'http', 'expectStatus'],
  ['verify', 'http', 'passes'],
  ['failureBudget', 'maxFailPercent'],
];

/** Objects of the valid spec: where an unknown field can go. */
export const objects: ReadonlyArray<readonly (string | number)[]> = [
  [],
  ['target'],
  ['target', 'loadBalancer', 'haproxy'],
  ['target', 'servers', 0],
  ['target', 'upgrade'],
  ['strategy'],
  ['drain'],
  ['verify', 'http'],
  ['failureBudget'],
];

/** The field, list item or union member that directly holds a path: "a.b[0]" for "a.b[0].c", "a.b" for "a.b[0]". */
export const holderOf = (path: string): string => path.replace(/(\.[^.[\]]+|\[\d+\])$/, '');

export const pathText = (path: readonly (string | number)[]) =>
  path.reduce<string>(
    (out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${key}` : key),
    '',
  );

export function at(root: Json, path: readonly (string | number)[]): Json {
  return path.reduce<Json>((node, key) => node[key] as Json, root);
}

export function setAt(root: Json, path: readonly (string | number)[], value: unknown): void {
  const parent = at(root, path.slice(0, -1));
  parent[path[path.length - 1] as string] = value;
}

/** Values no field of the spec accepts in place of what it holds (checked per field below). */
export const wrongValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.constant([]),
  fc.constant({}),
  fc.double({ noNaN: false }).filter((n) => !Number.isInteger(n)),
  fc.integer({ min: -1_000_000, max: -1 }),
  fc.constantFrom(
    '',
    ' ',
    'web-1;touch /tmp/pwned',
    '$(id)',
    '`id`',
    'a b',
    '../../etc/passwd',
    '∞',
    'x'.repeat(300),
  ),
);

/** Whether `value` at `path` makes the spec invalid: a few generated values are in fact valid where they land. */
export function breaksField(spec: Json, path: readonly (string | number)[], value: unknown): boolean {
  const before = at(spec, path.slice(0, -1))[path[path.length - 1] as string];
  const field = path.join('.');
  if (JSON.stringify(before) === JSON.stringify(value)) return false;
  if (field === 'verify.http.path' && typeof value === 'string' && value.startsWith('/')) return false;
  // The socket is a filesystem path, never given to a shell: any absolute path of visible text is a valid one.
  if (
    field === 'target.loadBalancer.haproxy.socket' &&
    typeof value === 'string' &&
    value.startsWith('/') &&
    hiddenCharacterIn(value) === undefined
  )
    return false;
  // A failure budget may be a fraction of a percent.
  return !(
    field === 'failureBudget.maxFailPercent' &&
    typeof value === 'number' &&
    value >= 0 &&
    value <= 100
  );
}

/** Text leaves of the valid spec that reach a command, a path, an HTTP request or a terminal. */
export const textLeaves: ReadonlyArray<readonly (string | number)[]> = [
  ['target', 'name'],
  ['target', 'loadBalancer', 'haproxy', 'socket'],
  ['target', 'loadBalancer', 'haproxy', 'backend'],
  ['target', 'servers', 0, 'name'],
  ['target', 'upgrade', 'argv', 0],
  ['target', 'upgrade', 'argv', 1],
  ['version'],
  ['verify', 'http', 'path'],
];

/**
 * Characters that make text read other than it is or act on a terminal: controls (NUL, ESC, DEL, C1), bidirectional
 * overrides and isolates, zero-width characters, the BOM, soft hyphen, separators, fillers and variation selectors.
 */
export const hiddenCharacter = fc.constantFrom(
  '\u0000',
  '\u0007',
  '\t',
  '\r',
  '\u001b',
  '\u007f',
  '\u0085',
  '\u009b',
  '\u00ad',
  '\u061c',
  '\u180e',
  '\u200b',
  '\u200c',
  '\u200d',
  '\u200e',
  '\u200f',
  '\u2028',
  '\u2029',
  '\u202a',
  '\u202b',
  '\u202c',
  '\u202d',
  '\u202e',
  '\u2060',
  '\u2066',
  '\u2067',
  '\u2068',
  '\u2069',
  '\u3164',
  '\ufe0f',
  '\ufeff',
  '\ud800',
  '\u{e0041}',
);

/** Numeric leaves with the largest value each accepts; anything above must be refused. */
export const boundedNumbers: ReadonlyArray<readonly [readonly (string | number)[], number]> = [
  [['strategy', 'batchSize'], 1_000_000],
  [['strategy', 'maxUnavailable'], 1_000_000],
  [['verify', 'http', 'expectStatus'], 599],
  [['verify', 'http', 'passes'], 100],
  [['failureBudget', 'maxFailPercent'], 100],
];

/** Duration leaves: a year at most. */
export const durationLeaves: ReadonlyArray<readonly (string | number)[]> = [
  ['target', 'upgrade', 'timeout'],
  ['strategy', 'pauseBetweenBatches'],
  ['drain', 'timeout'],
  ['drain', 'pollInterval'],
  ['verify', 'http', 'interval'],
  ['verify', 'http', 'timeout'],
  ['verify', 'http', 'requestTimeout'],
];
