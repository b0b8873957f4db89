import type { RuntimeState, ServerSample, ServerTraffic, TrafficProvider } from '../ports';
import { HaproxyRuntimeApi, parseStatCsv } from './runtime-api';

/** One HAProxy backend as a TrafficProvider. */
export class HaproxyTrafficProvider implements TrafficProvider {
  private readonly api: HaproxyRuntimeApi;

  constructor(
    socketPath: string,
    private readonly backend: string,
  ) {
    this.api = new HaproxyRuntimeApi(socketPath);
  }

  async listServers(): Promise<string[]> {
    const rows = await this.api.showStat();
    const backendRows = rows.filter((row) => row.pxname === this.backend);
    if (backendRows.length === 0) throw new Error(`HAProxy has no backend "${this.backend}"`);
    return backendRows
      .map((row) => row.svname ?? '')
      .filter((name) => name !== 'BACKEND' && name !== 'FRONTEND');
  }

  async detach(server: string): Promise<void> {
    await this.api.execute(`set server ${this.backend}/${server} state drain`);
  }

  async attach(server: string): Promise<void> {
    await this.api.execute(`set server ${this.backend}/${server} state ready`);
  }

  async setWeight(server: string, weight: number): Promise<void> {
    await this.api.execute(`set server ${this.backend}/${server} weight ${Math.round(weight)}`);
  }

  async traffic(server: string): Promise<ServerTraffic> {
    const { [server]: traffic } = await this.trafficOf([server]);
    if (!traffic) throw new Error(`HAProxy backend "${this.backend}" has no server "${server}"`);
    return traffic;
  }

  /**
   * One `show stat <backend> 4 <id>` per server, sent back to back: the reading grows with the servers asked
   * about, where a plain `show stat` gives every server of every backend. Server ids come from `show servers
   * state`, read once and again when a server is not where its id said (added or deleted at run time).
   */
  async trafficOf(servers: readonly string[]): Promise<Record<string, ServerTraffic>> {
    for (let attempt = 1; ; attempt++) {
      this.serverIds ??= await this.readServerIds();
      const ids = this.serverIds;
      const unknown = servers.filter((server) => !ids.has(server));
      const rows =
        unknown.length > 0
          ? []
          : parseStatCsv(
              await this.api.sendAll(
                servers.map((server) => `show stat ${this.backend} 4 ${ids.get(server)}`),
              ),
            );
      const byName = new Map(
        rows.filter((row) => row.pxname === this.backend).map((row) => [row.svname, row]),
      );
      const missing = servers.filter((server) => !byName.has(server));
      if (missing.length > 0) {
        this.serverIds = undefined;
        if (attempt === 1) continue;
        throw new Error(`HAProxy backend "${this.backend}" has no server "${missing.join('", "')}"`);
      }
      return Object.fromEntries(servers.map((server) => [server, serverTraffic(byName.get(server) ?? {})]));
    }
  }

  private serverIds: Map<string, string> | undefined;

  private async readServerIds(): Promise<Map<string, string>> {
    return serverIdsOf(await this.serversState());
  }

  /** `show servers state` rows: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ... */
  private async serversState(): Promise<string[][]> {
    const answer = await this.api.send(`show servers state ${this.backend}`);
    const [format, header, ...lines] = answer.split('\n');
    if (format !== '1' || !header?.startsWith('# be_id'))
      throw new Error(`unexpected "show servers state ${this.backend}" answer: ${answer.slice(0, 200)}`);
    return lines.filter((line) => line.trim() !== '').map((line) => line.split(' '));
  }

  async counters(): Promise<Record<string, ServerSample>> {
    const rows = await this.api.showStat();
    const samples: Record<string, ServerSample> = {};
    for (const row of rows) {
      const name = row.svname ?? '';
      if (row.pxname !== this.backend || name === 'BACKEND' || name === 'FRONTEND') continue;
      const num = (column: string) => Number(row[column] || 0);
      samples[name] = {
        responses: ['hrsp_1xx', 'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx', 'hrsp_other', 'eresp']
          .map(num)
          .reduce((a, b) => a + b, 0),
        errors: num('hrsp_5xx') + num('eresp'),
        responseTimeMs: num('rtime'),
        weight: num('weight'),
      };
    }
    return samples;
  }

  async servers(): Promise<Array<{ name: string; address: string }>> {
    const rows = await this.api.showStat();
    const backendRows = rows.filter((row) => row.pxname === this.backend);
    if (backendRows.length === 0) throw new Error(`HAProxy has no backend "${this.backend}"`);
    return backendRows
      .filter((row) => row.svname !== 'BACKEND' && row.svname !== 'FRONTEND')
      .map((row) => ({ name: row.svname ?? '', address: row.addr ?? '' }));
  }

  async addServer(name: string, address: string, options: readonly string[]): Promise<void> {
    const known = await this.listServers();
    if (!known.includes(name))
      await this.api.execute(`add server ${this.backend}/${name} ${address} ${options.join(' ')}`);
    // A new server starts in maintenance with its checks off; in drain, checks run but no request comes.
    await this.api.execute(`enable health ${this.backend}/${name}`).catch((error: unknown) => {
      // A server added without "check" has no health check to enable.
      if (!/no health check|not configured/i.test((error as Error).message)) throw error;
    });
    await this.api.execute(`set server ${this.backend}/${name} state drain`);
  }

  async removeServer(name: string): Promise<void> {
    if (!(await this.listServers()).includes(name)) return;
    await this.api.execute(`set server ${this.backend}/${name} state maint`);
    await this.api.execute(`del server ${this.backend}/${name}`);
  }

  /**
   * A reload starts a new HAProxy process, with a new pid: while the pid is the one the last full reading saw,
   * the drains set since stand, and the check costs one short `show info`, whatever the backend's size.
   */
  async undrained(servers: readonly string[]): Promise<string[]> {
    const pid = await this.process();
    if (pid === this.checkedProcess) return [];
    const wanted = new Set(servers);
    // Admin state bits: 0 is none of drain and maintenance set. A reload may also renumber servers.
    const rows = await this.serversState();
    this.serverIds = serverIdsOf(rows);
    const lost = rows
      .filter((cells) => wanted.has(cells[3] ?? '') && cells[6] === '0')
      .map((cells) => cells[3] ?? '');
    // Those are detached again by the caller; until then the next check must read them again.
    if (lost.length === 0) this.checkedProcess = pid;
    return lost;
  }

  /** The pid of the HAProxy process whose drains were last read, all in place. */
  private checkedProcess: string | undefined;

  /**
   * Compares what the rollout set with `show servers state` and sends only what is missing. Servers added again
   * come back first, and the rest only once HAProxy's checks pass for them (10 s at most), as a new server's
   * would: the backend is never left without a server to send a request to, and a server added again idle is
   * ready to be switched to. A reload meanwhile (the pid changed again) starts it over, at most three times.
   */
  async restore(state: RuntimeState): Promise<{ process: string; restored: string[] }> {
    const restored: string[] = [];
    for (let attempt = 1; ; attempt++) {
      const pid = await this.process();
      const rows = new Map((await this.serversState()).map((cells) => [cells[3] ?? '', cells]));
      const drained = new Set(state.drained);
      const added: string[] = [];
      const serving: string[] = [];
      for (const { name, address } of state.added) {
        if (rows.has(name) || state.removed.includes(name)) continue;
        // Added as addServer adds one: checked, and in drain until told otherwise.
        await this.addServer(name, address, state.addOptions);
        restored.push(`${name} added again`);
        added.push(name);
        if (!drained.has(name)) serving.push(name);
      }
      for (const name of state.serving) {
        const cells = rows.get(name);
        if (!cells || drained.has(name) || (Number(cells[6]) & adminDrain) === 0) continue;
        // Half of a switch the reload interrupted: this half first, so the drains below leave servers serving.
        serving.push(name);
        restored.push(`${name} in rotation again`);
      }
      if (serving.length > 0)
        await this.api.executeAll(serving.map((name) => `set server ${this.backend}/${name} state ready`));
      if (added.length > 0 || serving.length > 0)
        await this.untilChecked([...added, ...serving], checksPassWithinMs);
      const commands: string[] = [];
      // Servers added again above are in drain already.
      for (const name of drained) {
        const cells = rows.get(name);
        if (!cells || (Number(cells[6]) & adminDrain) !== 0) continue;
        commands.push(`set server ${this.backend}/${name} state drain`);
        restored.push(`${name} out of rotation again`);
      }
      for (const [name, weight] of Object.entries(state.weights)) {
        // A server added again above has the weight of its options: set it all the same.
        const addedAgain = added.includes(name);
        const cells = rows.get(name);
        if (!addedAgain && (!cells || Number(cells[7]) === Math.round(weight))) continue;
        commands.push(`set server ${this.backend}/${name} weight ${Math.round(weight)}`);
        if (!addedAgain) restored.push(`${name} weight ${Math.round(weight)} again`);
      }
      for (const name of state.removed) {
        if (!rows.has(name)) continue;
        commands.push(`set server ${this.backend}/${name} state maint`, `del server ${this.backend}/${name}`);
        restored.push(`${name} removed again`);
      }
      if (commands.length > 0) await this.api.executeAll(commands);
      const now = await this.process();
      if (now === pid || attempt >= 3) {
        this.serverIds = undefined;
        this.checkedProcess = now === pid ? now : undefined;
        return { process: now, restored };
      }
    }
  }

  /**
   * Waits until HAProxy's own checks have passed for each server, or `timeoutMs` passes: "UP", or "DRAIN" alone
   * ("DRAIN 1/2" is still rising).
   */
  private async untilChecked(servers: readonly string[], timeoutMs: number): Promise<void> {
    this.serverIds = undefined;
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
      const readings = await this.trafficOf(servers);
      if (servers.every((name) => /^(UP|DRAIN|no check)$/.test(readings[name]?.status ?? ''))) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async process(): Promise<string> {
    const info = await this.api.send('show info');
    const pid = /^Pid: (\d+)$/m.exec(info)?.[1];
    if (!pid) throw new Error(`unexpected "show info" answer: ${info.slice(0, 200)}`);
    return pid;
  }

  async switchTraffic(toServe: readonly string[], toDrain: readonly string[]): Promise<void> {
    await this.api.executeAll([
      ...toServe.map((name) => `set server ${this.backend}/${name} state ready`),
      ...toDrain.map((name) => `set server ${this.backend}/${name} state drain`),
    ]);
  }
}

/** How long a restore waits for HAProxy's checks to pass on the servers it brought back before it drains others. */
const checksPassWithinMs = 10_000;

/** srv_admin_state bits of a drain, forced (the Runtime API) or inherited. */
const adminDrain = 0x18;

function serverTraffic(row: Record<string, string>): ServerTraffic {
  const num = (column: string) => Number(row[column] || 0);
  return {
    status: row.status ?? 'UNKNOWN',
    sessions: num('scur'),
    queued: num('qcur'),
    usedConnections: num('used_conn_cur'),
    weight: num('weight'),
  };
}

/** Each server's id in its backend, by name, from `show servers state` rows (srv_id, then srv_name). */
function serverIdsOf(rows: readonly string[][]): Map<string, string> {
  return new Map(rows.map((cells) => [cells[3] ?? '', cells[2] ?? '']));
}
