import { createConnection, createServer } from 'node:net';
import { renameSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '../../activities';
import type { TrafficProvider } from '../../activities/ports';

/** One call a worker's activity made to HAProxy (or to a server's check), and whether it worked. */
export interface RecordedCall {
  /** The activity type that made the call; '' outside an activity. */
  readonly activity: string;
  readonly attempt: number;
  readonly call: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly at: number;
}

function currentActivity(): { activity: string; attempt: number } {
  try {
    const { activityType, attempt } = Context.current().info;
    return { activity: activityType, attempt };
  } catch {
    return { activity: '', attempt: 0 };
  }
}

/**
 * The worker's own record of its HAProxy and health-check calls, with a hook that runs before each call is made:
 * a fault placed from inside the step it is meant for, rather than after a sleep, lands there.
 */
export function recordingDeps(
  base: ActivityDeps,
  beforeCall: (activity: string, call: string) => void,
): { deps: ActivityDeps; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const recorded = async <T>(call: string, run: () => Promise<T>): Promise<T> => {
    const { activity, attempt } = currentActivity();
    beforeCall(activity, call);
    try {
      const result = await run();
      calls.push({ activity, attempt, call, ok: true, at: Date.now() });
      return result;
    } catch (error) {
      calls.push({ activity, attempt, call, ok: false, error: (error as Error).message, at: Date.now() });
      throw error;
    }
  };
  const wrapped = new WeakMap<TrafficProvider, TrafficProvider>();
  const instrument = (provider: TrafficProvider): TrafficProvider => {
    let proxy = wrapped.get(provider);
    if (!proxy) {
      proxy = new Proxy(provider, {
        get(target, property, receiver) {
          const value: unknown = Reflect.get(target, property, receiver);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) =>
            recorded(String(property), () => Promise.resolve(value.apply(target, args) as unknown));
        },
      });
      wrapped.set(provider, proxy);
    }
    return proxy;
  };
  return {
    calls,
    deps: {
      ...base,
      trafficFor: (lb) => instrument(base.trafficFor(lb)),
      verifier: {
        probe: (url, check, signal) => recorded('probe', () => base.verifier.probe(url, check, signal)),
      },
    },
  };
}

/**
 * Takes HAProxy's admin socket away for `ms` (renamed aside, as a stopped or wedged admin socket looks to a
 * client), at once and synchronously, so the call about to be made finds it gone.
 */
export function hideSocketFor(
  socket: string,
  ms: number,
): { readonly hiddenAt: number; restored: Promise<void> } {
  const aside = `${socket}.hidden`;
  renameSync(socket, aside);
  const hiddenAt = Date.now();
  const restored = new Promise<void>((resolve, reject) => {
    setTimeout(() => void rename(aside, socket).then(resolve, reject), ms);
  });
  return { hiddenAt, restored };
}

/** A unix socket in front of HAProxy's admin socket that can hold one command back. */
export interface HoldingSocketProxy {
  /** The proxy's socket: give it to a rollout as its HAProxy socket. */
  readonly path: string;
  /**
   * Holds back the next command that matches `pattern` for `ms`, then passes it on (whether or not its sender is
   * still there to read the answer). Resolves with the command the moment it arrives, while it is held.
   */
  hold(pattern: RegExp, ms: number): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts a proxy at `path` for HAProxy's admin socket `upstream`, one command per connection as HAProxy's
 * non-interactive mode takes them. A command held back keeps its activity in flight for as long: a kill then lands
 * inside the step that sent it, however short the command itself.
 */
export async function startHoldingSocketProxy(upstream: string, path: string): Promise<HoldingSocketProxy> {
  let armed: { pattern: RegExp; ms: number; arrived: (command: string) => void } | undefined;
  // Half-open: the client ends its side once its command is sent, and reads the answer after.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const chunks: Buffer[] = [];
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    client.on('error', () => undefined);
    client.once('end', () => {
      const command = Buffer.concat(chunks);
      const text = command.toString('utf8');
      const held = armed?.pattern.test(text) ? armed : undefined;
      if (held) {
        armed = undefined;
        held.arrived(text.trim());
      }
      setTimeout(
        () => {
          const haproxy = createConnection(upstream);
          haproxy.on('error', (error) => client.destroy(error));
          haproxy.on('connect', () => haproxy.end(command));
          haproxy.pipe(client);
        },
        held ? held.ms : 0,
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return {
    path,
    hold: (pattern, ms) =>
      new Promise((arrived) => {
        armed = { pattern, ms, arrived };
      }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
