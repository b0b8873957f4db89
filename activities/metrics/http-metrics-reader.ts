import type { MetricsReader } from '../ports';

/** Reads a metrics page over HTTP, on a connection of its own (a pod's address is reused by the next pod). */
export class HttpMetricsReader implements MetricsReader {
  async read(url: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Response;
    try {
      response = await fetch(url, {
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        headers: { connection: 'close', accept: 'text/plain' },
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      throw new Error(`GET ${url} failed: ${cause ?? (error as Error).message}`);
    }
    const text = await response.text();
    if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}, expected 200`);
    return text;
  }
}
