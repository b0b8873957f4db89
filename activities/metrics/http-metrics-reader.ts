import type { MetricsReader } from '../ports';
import { getOnce } from '../verify/http-get';

/** Reads a metrics page over HTTP. */
export class HttpMetricsReader implements MetricsReader {
  async read(url: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
    const response = await getOnce(url, timeoutMs, signal, { accept: 'text/plain' });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}, expected 200`);
    return text;
  }
}
