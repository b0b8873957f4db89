import type { HttpVerification } from '../../spec/rollout';
import type { ProbeResult, Verifier } from '../ports';

/** Checks a server over HTTP: status code, and the version it reports in a header or a JSON field. */
export class HttpVerifier implements Verifier {
  async probe(url: string, check: HttpVerification, signal?: AbortSignal): Promise<ProbeResult> {
    const timeout = AbortSignal.timeout(check.requestTimeout);
    const abort = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetch(url, { signal: abort, headers: { connection: 'close' } });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return { ok: false, problem: `GET ${url} failed: ${cause ?? (error as Error).message}` };
    }
    const body = await response.text();
    let version: string | undefined;
    if ('header' in check.versionFrom) {
      version = response.headers.get(check.versionFrom.header) ?? undefined;
    } else {
      try {
        const parsed = JSON.parse(body) as Record<string, unknown>;
        const field = parsed[check.versionFrom.json];
        version = typeof field === 'string' ? field : undefined;
      } catch {
        version = undefined;
      }
    }
    if (response.status !== check.expectStatus) {
      return {
        ok: false,
        status: response.status,
        version,
        problem: `GET ${url} answered ${response.status}, expected ${check.expectStatus}`,
      };
    }
    return { ok: true, status: response.status, version };
  }
}
