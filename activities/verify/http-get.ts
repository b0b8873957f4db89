/**
 * One GET on a connection of its own (a server's or pod's address may belong to another one next time), bounded by
 * `timeoutMs` and by `signal`. Throws "GET <url> failed: <why>" when no answer came.
 */
export async function getOnce(
  url: string,
  timeoutMs: number,
  signal?: AbortSignal,
  headers: Record<string, string> = {},
): Promise<Response> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    return await fetch(url, {
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      headers: { ...headers, connection: 'close' },
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    throw new Error(`GET ${url} failed: ${cause ?? (error as Error).message}`);
  }
}
