import type { HttpVerification } from '../../spec/rollout';
import type { ProbeResult, Verifier } from '../ports';
import { getOnce } from './http-get';

/** Checks a server over HTTP: status code, and the version it reports in a header or a JSON field. */
export class HttpVerifier implements Verifier {
  async probe(url: string, check: HttpVerification, signal?: AbortSignal): Promise<ProbeResult> {
    let response: Response;
    try {
      response = await getOnce(url, check.requestTimeout, signal);
    } catch (error) {
      return { ok: false, problem: (error as Error).message };
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
