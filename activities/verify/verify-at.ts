import type { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/activity';
import type { HttpVerification } from '../../spec/rollout';
import type { Verifier } from '../ports';

/** The failure type of a server or pod that did not pass its checks; the workflow rolls back on it. */
export const verificationFailed = 'VerificationFailed';

/**
 * Checks one URL (a server's, a pod's own address) until it passes `verify.passes` times in a row reporting
 * `version`, heartbeating each check; fails, naming `name`, once `verify.timeout` has passed.
 */
export async function verifyAt(
  ctx: Context,
  verifier: Verifier,
  name: string,
  url: string,
  verify: HttpVerification,
  version: string,
): Promise<{ checks: number }> {
  const deadline = Date.now() + verify.timeout;
  let consecutive = 0;
  let checks = 0;
  let lastProblem = 'no check ran';
  for (;;) {
    const result = await verifier.probe(url, verify, ctx.cancellationSignal);
    checks++;
    if (result.ok && result.version === version) {
      consecutive++;
      if (consecutive >= verify.passes) return { checks };
    } else {
      consecutive = 0;
      lastProblem = result.ok
        ? `reports version ${result.version ?? '(none)'}, expected ${version}`
        : (result.problem ?? 'failed');
    }
    ctx.heartbeat({ checks, consecutive });
    if (Date.now() >= deadline) {
      throw ApplicationFailure.nonRetryable(
        `${name} failed verification for ${version} after ${checks} checks: ${lastProblem}`,
        verificationFailed,
      );
    }
    await ctx.sleep(verify.interval);
  }
}
