import type { HaproxyLoadBalancer } from '../../spec/rollout';
import { trafficOfEach } from './traffic-of-each';
import type {
  ActivityDeps,
  CommandResult,
  HostExecutor,
  ProbeResult,
  ServerTraffic,
  TrafficProvider,
  Verifier,
} from '../ports';

/** How long each step of one server takes in a simulated fleet. */
export interface StepTimes {
  readonly detachMs: number;
  readonly drainMs: number;
  readonly upgradeMs: number;
  readonly verifyMs: number;
  readonly attachMs: number;
}

export const noopSteps: StepTimes = { detachMs: 0, drainMs: 0, upgradeMs: 0, verifyMs: 0, attachMs: 0 };

/** A step of one server, as the simulation timed it. */
export type SimulatedStep = 'detach' | 'drain' | 'upgrade' | 'verify' | 'attach';

interface SimulatedServer {
  readonly name: string;
  readonly backend: string;
  version: string;
  serving: boolean;
  /** When the server's last request ends after a detach: a drain waits until then. */
  drainedAt: number;
  /** When the version last installed answers its health check: a verification waits until then. */
  readyAt: number;
  upgrades: number;
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : undefined);

/**
 * Fleets whose steps take fixed, known times, for benchmarks of the engine itself: detaching and attaching take
 * `detachMs` / `attachMs`, the last request on a detached server ends `drainMs` after the detach, an upgrade
 * command runs `upgradeMs`, and a new version answers its health check `verifyMs` after its upgrade (a probe
 * waits for it, as a request to a warming server would). Any number of backends, each its own fleet, so
 * thousands of rollouts can share one worker. Nothing is real: tests of real behaviour use HAProxy and processes.
 */
export class SimulatedFleets {
  private readonly backends = new Map<string, Map<string, SimulatedServer>>();
  private readonly byHost = new Map<string, SimulatedServer>();
  /** How long each step's work took, by "backend/server/step": the engine's overhead is the rest. */
  readonly work = new Map<string, number>();

  constructor(private readonly times: StepTimes) {}

  /** Adds a backend of `count` servers on `version`; returns the servers as a spec lists them. */
  add(backend: string, count: number, version: string): Array<{ name: string; address: string }> {
    const servers = new Map<string, SimulatedServer>();
    const listed: Array<{ name: string; address: string }> = [];
    const width = String(count).length;
    for (let i = 1; i <= count; i++) {
      const name = `sim-${String(i).padStart(width, '0')}`;
      // The host names the backend, so a probe finds its server without the load balancer.
      const host = `${name}.${backend}`;
      const server: SimulatedServer = {
        name,
        backend,
        version,
        serving: true,
        drainedAt: 0,
        readyAt: 0,
        upgrades: 0,
      };
      servers.set(name, server);
      this.byHost.set(host, server);
      listed.push({ name, address: `${host}:8080` });
    }
    this.backends.set(backend, servers);
    return listed;
  }

  backendsCount(): number {
    return this.backends.size;
  }

  /** Every server of a backend with its version and how many upgrades it went through. */
  servers(backend: string): Array<{ name: string; version: string; upgrades: number; serving: boolean }> {
    return [...this.fleet(backend)].map(([name, s]) => ({
      name,
      version: s.version,
      upgrades: s.upgrades,
      serving: s.serving,
    }));
  }

  /** Spends a step's time (a fixed duration, or until a moment) and records how long it took. */
  private async spend(server: SimulatedServer, step: SimulatedStep, ms: number): Promise<void> {
    const start = Date.now();
    await sleep(ms);
    this.work.set(`${server.backend}/${server.name}/${step}`, Date.now() - start);
  }

  deps(): ActivityDeps {
    return {
      trafficFor: (lb) => this.traffic(lb),
      hosts: this.hosts,
      verifier: this.verifier,
      metrics: {
        read: () => Promise.reject(new Error('a simulated fleet has no pods to read metrics from')),
      },
      kubernetes: () => {
        throw new Error('a simulated fleet has no Kubernetes API');
      },
    };
  }

  private fleet(backend: string): Map<string, SimulatedServer> {
    const fleet = this.backends.get(backend);
    if (!fleet) throw new Error(`no simulated backend ${backend}`);
    return fleet;
  }

  private traffic(lb: HaproxyLoadBalancer): TrafficProvider {
    const fleet = this.fleet(lb.backend);
    const { times } = this;
    const get = (name: string) => {
      const server = fleet.get(name);
      if (!server) throw new Error(`backend ${lb.backend} has no server ${name}`);
      return server;
    };
    const refuse = (what: string) => () => Promise.reject(new Error(`a simulated fleet does not ${what}`));
    const provider: TrafficProvider = {
      listServers: () => Promise.resolve([...fleet.keys()]),
      detach: async (name) => {
        const server = get(name);
        await this.spend(server, 'detach', times.detachMs);
        if (server.serving) server.drainedAt = Date.now() + times.drainMs;
        server.serving = false;
      },
      attach: async (name) => {
        const server = get(name);
        await this.spend(server, 'attach', times.attachMs);
        server.serving = true;
      },
      traffic: async (name): Promise<ServerTraffic> => {
        const server = get(name);
        if (!server.serving) await this.spend(server, 'drain', server.drainedAt - Date.now());
        return {
          status: server.serving ? 'UP' : 'MAINT',
          sessions: 0,
          queued: 0,
          usedConnections: 0,
          weight: 1,
        };
      },
      trafficOf: (names) => trafficOfEach(provider, names),
      setWeight: () => Promise.resolve(),
      counters: () => Promise.resolve({}),
      servers: () =>
        Promise.resolve([...fleet.keys()].map((name) => ({ name, address: `${name}.${lb.backend}:8080` }))),
      addServer: refuse('create servers'),
      removeServer: refuse('remove servers'),
      switchTraffic: async (toServe, toDrain) => {
        await Promise.all([
          ...toServe.map((name) => provider.attach(name)),
          ...toDrain.map((name) => provider.detach(name)),
        ]);
      },
      undrained: (names) => Promise.resolve(names.filter((name) => get(name).serving)),
      // A simulated load balancer is never reloaded.
      process: () => Promise.resolve('simulated'),
      restore: () => Promise.resolve({ process: 'simulated', restored: [] }),
    };
    return provider;
  }

  /** Upgrade commands are `[anything, <address>, <version>]`. */
  private readonly hosts: HostExecutor = {
    run: async (argv): Promise<CommandResult> => {
      const [, address = '', version = ''] = argv;
      const server = this.byHost.get(address.split(':')[0] ?? '');
      if (!server) throw new Error(`no simulated server at ${address}`);
      if (server.serving) throw new Error(`upgrade of ${address} while it still takes traffic`);
      await this.spend(server, 'upgrade', this.times.upgradeMs);
      server.version = version;
      server.upgrades++;
      server.readyAt = Date.now() + this.times.verifyMs;
      return { stdout: '', stderr: '' };
    },
  };

  private readonly verifier: Verifier = {
    probe: async (url: string): Promise<ProbeResult> => {
      const server = this.byHost.get(new URL(url).hostname);
      if (!server) return { ok: false, problem: `no server at ${url}` };
      if (server.upgrades > 0) await this.spend(server, 'verify', server.readyAt - Date.now());
      return { ok: true, status: 200, version: server.version };
    },
  };
}
