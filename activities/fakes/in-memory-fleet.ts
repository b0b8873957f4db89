import { ApplicationFailure } from '@temporalio/common';
import { trafficOfEach } from './traffic-of-each';
import type { HttpVerification } from '../../spec/rollout';
import type {
  ActivityDeps,
  CommandResult,
  HostExecutor,
  ProbeResult,
  ServerSample,
  ServerTraffic,
  TrafficProvider,
  Verifier,
} from '../ports';

export type FleetEvent =
  | {
      readonly server: string;
      readonly action: 'detach' | 'detach-failed' | 'attach' | 'drain-check' | 'probe';
    }
  | { readonly server: string; readonly action: 'upgrade'; readonly version: string };

export interface InMemoryFleetOptions {
  /** Requests in flight on a server when it is detached; each drain check sees one fewer. */
  readonly inFlightOnDetach?: number;
  /** Versions whose servers answer health checks with 500. */
  readonly brokenVersions?: readonly string[];
  /** Upgrades that always fail: server name -> the version its upgrade fails for. */
  readonly failingUpgrades?: Readonly<Record<string, string>>;
  /** Simulated duration of each step, for benchmarks. */
  readonly upgradeMs?: number;
  /** Share of requests answered 5xx, by version: each counters() reading adds 100 requests per unit of weight. */
  readonly errorRates?: Readonly<Record<string, number>>;
  /** Servers whose first detach fails, as a command that retrying can't mend (the server stays in rotation). */
  readonly failFirstDetach?: readonly string[];
}

interface FakeServer {
  version: string;
  ready: boolean;
  inFlight: number;
  weight: number;
  responses: number;
  errors: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A fleet and its load balancer in memory, for tests of workflow logic: it records every action per server and
 * the most servers ever out of rotation at once. Real HAProxy and real processes are tested elsewhere.
 */
export class InMemoryFleet {
  readonly events: FleetEvent[] = [];
  maxOut = 0;
  private readonly servers = new Map<string, FakeServer>();
  private readonly byAddress = new Map<string, string>();

  constructor(
    names: readonly string[],
    version: string,
    private readonly options: InMemoryFleetOptions = {},
  ) {
    names.forEach((name, i) => {
      this.servers.set(name, { version, ready: true, inFlight: 0, weight: 1, responses: 0, errors: 0 });
      this.byAddress.set(InMemoryFleet.address(i), name);
    });
  }

  /** The address of the i-th server, as specs for this fleet should list it. */
  static address(index: number): string {
    return `10.0.0.${index + 1}:8080`;
  }

  version(name: string): string {
    return this.get(name).version;
  }

  weight(name: string): number {
    return this.get(name).weight;
  }

  /** Puts one server on a version, as an earlier, interrupted rollout might have left it. */
  setVersion(name: string, version: string): void {
    this.get(name).version = version;
  }

  /** Each server's actions in order, consecutive repeats folded: ['detach', 'drain-check', 'upgrade:v2', ...]. */
  timeline(name: string): string[] {
    const steps = this.events
      .filter((e) => e.server === name)
      .map((e) => (e.action === 'upgrade' ? `upgrade:${e.version}` : e.action));
    return steps.filter((step, i) => step !== steps[i - 1]);
  }

  deps(): ActivityDeps {
    return {
      trafficFor: () => this.traffic,
      hosts: this.hosts,
      verifier: this.verifier,
      metrics: {
        read: () => Promise.reject(new Error('the in-memory fleet has no pods to read metrics from')),
      },
      kubernetes: () => {
        throw new Error('the in-memory fleet has no Kubernetes API');
      },
    };
  }

  private get(name: string): FakeServer {
    const server = this.servers.get(name);
    if (!server) throw new Error(`no server ${name}`);
    return server;
  }

  private countOut(): void {
    const out = [...this.servers.values()].filter((s) => !s.ready).length;
    this.maxOut = Math.max(this.maxOut, out);
  }

  /**
   * What a reload of HAProxy from its configuration file does: a new process, every server back in rotation at
   * its configured weight, and the request counters from zero.
   */
  reload(): void {
    this.generation++;
    for (const server of this.servers.values()) {
      server.ready = true;
      server.weight = 1;
      server.responses = 0;
      server.errors = 0;
    }
  }

  private generation = 1;

  /** The servers out of rotation now. */
  outOfRotation(): string[] {
    return [...this.servers].filter(([, server]) => !server.ready).map(([name]) => name);
  }

  private readonly detachFailed = new Set<string>();

  private readonly traffic: TrafficProvider = {
    listServers: () => Promise.resolve([...this.servers.keys()]),
    detach: (name) => {
      const server = this.get(name);
      if (this.options.failFirstDetach?.includes(name) && !this.detachFailed.has(name)) {
        this.detachFailed.add(name);
        this.events.push({ server: name, action: 'detach-failed' });
        return Promise.reject(ApplicationFailure.nonRetryable(`detach of ${name}: the admin socket refused`));
      }
      if (server.ready) server.inFlight = this.options.inFlightOnDetach ?? 0;
      server.ready = false;
      this.events.push({ server: name, action: 'detach' });
      this.countOut();
      return Promise.resolve();
    },
    attach: (name) => {
      this.get(name).ready = true;
      this.events.push({ server: name, action: 'attach' });
      return Promise.resolve();
    },
    traffic: (name): Promise<ServerTraffic> => {
      const server = this.get(name);
      if (!server.ready) this.events.push({ server: name, action: 'drain-check' });
      const sessions = server.inFlight;
      server.inFlight = Math.max(0, server.inFlight - 1);
      return Promise.resolve({
        status: server.ready ? 'UP' : 'DRAIN',
        sessions,
        queued: 0,
        usedConnections: 0,
        weight: server.weight,
      });
    },
    trafficOf: (names) => trafficOfEach(this.traffic, names),
    setWeight: (name, weight) => {
      this.get(name).weight = weight;
      return Promise.resolve();
    },
    servers: () =>
      Promise.resolve([...this.byAddress.entries()].map(([address, name]) => ({ name, address }))),
    // Creating servers is tested against real HAProxy and real processes only.
    addServer: () => Promise.reject(new Error('the in-memory fleet does not create servers')),
    removeServer: () => Promise.reject(new Error('the in-memory fleet does not remove servers')),
    switchTraffic: async (toServe, toDrain) => {
      await Promise.all([
        ...toServe.map((name) => this.traffic.attach(name)),
        ...toDrain.map((name) => this.traffic.detach(name)),
      ]);
    },
    undrained: (names) => Promise.resolve(names.filter((name) => this.get(name).ready)),
    process: () => Promise.resolve(String(this.generation)),
    restore: (state) => {
      const restored: string[] = [];
      for (const name of state.drained)
        if (this.get(name).ready) {
          this.get(name).ready = false;
          restored.push(`${name} out of rotation again`);
        }
      for (const [name, weight] of Object.entries(state.weights))
        if (this.get(name).weight !== weight) {
          this.get(name).weight = weight;
          restored.push(`${name} weight ${weight} again`);
        }
      return Promise.resolve({ process: String(this.generation), restored });
    },
    counters: () => {
      const samples: Record<string, ServerSample> = {};
      for (const [name, server] of this.servers) {
        if (server.ready) {
          const served = 100 * server.weight;
          server.responses += served;
          server.errors += Math.round(served * (this.options.errorRates?.[server.version] ?? 0));
        }
        samples[name] = {
          responses: server.responses,
          errors: server.errors,
          responseTimeMs: 10,
          weight: server.weight,
        };
      }
      return Promise.resolve(samples);
    },
  };

  private readonly hosts: HostExecutor = {
    run: async (argv): Promise<CommandResult> => {
      const [, name = '', version = ''] = argv;
      const server = this.get(name);
      if (server.ready) throw new Error(`upgrade of ${name} while it still takes traffic`);
      if (this.options.failingUpgrades?.[name] === version)
        throw new Error(`upgrade of ${name} failed: disk full`);
      if (this.options.upgradeMs) await sleep(this.options.upgradeMs);
      server.version = version;
      this.events.push({ server: name, action: 'upgrade', version });
      return { stdout: '', stderr: '' };
    },
  };

  private readonly verifier: Verifier = {
    probe: (url: string, _check: HttpVerification): Promise<ProbeResult> => {
      const name = this.byAddress.get(new URL(url).host);
      if (!name) return Promise.resolve({ ok: false, problem: `no server at ${url}` });
      const server = this.get(name);
      this.events.push({ server: name, action: 'probe' });
      if (this.options.brokenVersions?.includes(server.version)) {
        return Promise.resolve({
          ok: false,
          status: 500,
          version: server.version,
          problem: `GET ${url} answered 500`,
        });
      }
      return Promise.resolve({ ok: true, status: 200, version: server.version });
    },
  };
}
