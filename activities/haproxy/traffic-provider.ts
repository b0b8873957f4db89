import type { ServerSample, ServerTraffic, TrafficProvider } from '../ports';
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
    const pid = await this.processId();
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

  private async processId(): Promise<string> {
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
