import type { HaproxyLoadBalancer, HttpVerification } from '../spec/rollout';
import type { ServerCounters } from '../spec';
import type { KubernetesClients } from './kubernetes/api';

/** What a load balancer reports about one server's traffic. */
export interface ServerTraffic {
  /** HAProxy's administrative/operational state: "UP", "DRAIN", "MAINT", "DOWN", ... */
  readonly status: string;
  /** Requests being served right now. */
  readonly sessions: number;
  /** Requests waiting in the server's queue. */
  readonly queued: number;
  /** Connections to the server carrying a request (idle keep-alive connections don't count). */
  readonly usedConnections: number;
  readonly weight: number;
}

/** A load balancer that routes requests to a fleet's servers (HAProxy's Runtime API in production). */
export interface TrafficProvider {
  /** Names of the servers the backend knows. Throws when the load balancer or backend can't be reached. */
  listServers(): Promise<string[]>;
  /** Stops sending new requests to the server; requests already on it go on. Idempotent. */
  detach(server: string): Promise<void>;
  /** Sends requests to the server again. Idempotent. */
  attach(server: string): Promise<void>;
  traffic(server: string): Promise<ServerTraffic>;
  /** Each of these servers' traffic, from one reading that grows with them, not with the backend. */
  trafficOf(servers: readonly string[]): Promise<Record<string, ServerTraffic>>;
  setWeight(server: string, weight: number): Promise<void>;
  /** Every server's cumulative request counters and current weight, from one reading. */
  counters(): Promise<Record<string, ServerSample>>;
  /** The backend's servers with their addresses, in the backend's order. */
  servers(): Promise<Array<{ name: string; address: string }>>;
  /** Adds a server that takes no request yet (drain) but is health checked. Idempotent. */
  addServer(name: string, address: string, options: readonly string[]): Promise<void>;
  /** Takes a server out of the backend for good (maintenance, then deletion). One already gone is fine. */
  removeServer(name: string): Promise<void>;
  /** In one batch, sends requests to some servers and no new ones to others. */
  switchTraffic(toServe: readonly string[], toDrain: readonly string[]): Promise<void>;
  /**
   * Of these servers, the ones the load balancer no longer holds out of rotation, from one reading: a reload
   * by configuration management starts a new process from the configuration file, which knows nothing of the
   * drains set at run time.
   */
  undrained(servers: readonly string[]): Promise<string[]>;
  /** Which process of the load balancer answers: a reload starts a new one, which knows nothing set at run time. */
  process(): Promise<string>;
  /**
   * Puts back what a rollout set at run time and the running process lacks, and says which process now holds it
   * and what had to be put back.
   */
  restore(state: RuntimeState): Promise<{ process: string; restored: string[] }>;
}

/**
 * What a rollout set on a backend at run time, which a reload from the configuration file forgets: servers it
 * added, servers it holds out of rotation or took away, and weights.
 */
export interface RuntimeState {
  /**
   * Servers the backend must hold, added with `addOptions` when missing: those the rollout added, and those it
   * found in a backend whose fleet Baton provisions (earlier rollouts added them).
   */
  readonly added: ReadonlyArray<{ readonly name: string; readonly address: string }>;
  readonly addOptions: readonly string[];
  /** Servers out of rotation (drain); every other server the rollout added takes requests. */
  readonly drained: readonly string[];
  /** Servers the rollout put in rotation, which a drain found on them is taken off. */
  readonly serving: readonly string[];
  /** Servers the rollout removed from the backend for good. */
  readonly removed: readonly string[];
  readonly weights: Readonly<Record<string, number>>;
}

export interface ServerSample extends ServerCounters {
  readonly weight: number;
}

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command on the machine that owns a server (argv only: never through a shell). */
export interface HostExecutor {
  run(argv: readonly string[], options: { timeoutMs: number; signal?: AbortSignal }): Promise<CommandResult>;
}

/** One health check of one server. */
export interface ProbeResult {
  readonly ok: boolean;
  readonly status?: number;
  readonly version?: string;
  /** Why the probe failed, in words an operator can act on. */
  readonly problem?: string;
}

/** Checks one server directly, bypassing the load balancer. */
export interface Verifier {
  probe(url: string, check: HttpVerification, signal?: AbortSignal): Promise<ProbeResult>;
}

/** Reads a metrics page, as Prometheus scrapes one. */
export interface MetricsReader {
  /** The page's text; throws, saying why, when it can't be read or does not answer 200. */
  read(url: string, timeoutMs: number, signal?: AbortSignal): Promise<string>;
}

export interface ActivityDeps {
  /** Opens the traffic provider for one load balancer named in a spec. */
  trafficFor(loadBalancer: HaproxyLoadBalancer): TrafficProvider;
  hosts: HostExecutor;
  verifier: Verifier;
  metrics: MetricsReader;
  /** The Kubernetes API, opened on first use (a worker that only rolls fleets never needs a kubeconfig). */
  kubernetes(): KubernetesClients;
}
