import type { ServerSample, ServerTraffic, TrafficProvider } from '../ports';
import { HaproxyRuntimeApi } from './runtime-api';

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
    const rows = await this.api.showStat();
    const row = rows.find((r) => r.pxname === this.backend && r.svname === server);
    if (!row) throw new Error(`HAProxy backend "${this.backend}" has no server "${server}"`);
    const num = (column: string) => Number(row[column] || 0);
    return {
      status: row.status ?? 'UNKNOWN',
      sessions: num('scur'),
      queued: num('qcur'),
      usedConnections: num('used_conn_cur'),
      weight: num('weight'),
    };
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

  async undrained(servers: readonly string[]): Promise<string[]> {
    const wanted = new Set(servers);
    // `show servers state` gives each server's admin state as bits: 0 is none of drain and maintenance set.
    const answer = await this.api.send(`show servers state ${this.backend}`);
    const [format, header, ...lines] = answer.split('\n');
    if (format !== '1' || !header?.startsWith('# be_id'))
      throw new Error(`unexpected "show servers state ${this.backend}" answer: ${answer.slice(0, 200)}`);
    // Columns: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
    return lines
      .map((line) => line.split(' '))
      .filter((cells) => wanted.has(cells[3] ?? '') && cells[6] === '0')
      .map((cells) => cells[3] ?? '');
  }

  async switchTraffic(toServe: readonly string[], toDrain: readonly string[]): Promise<void> {
    await this.api.executeAll([
      ...toServe.map((name) => `set server ${this.backend}/${name} state ready`),
      ...toDrain.map((name) => `set server ${this.backend}/${name} state drain`),
    ]);
  }
}
