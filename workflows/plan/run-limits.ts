/**
 * The most servers a strategy that keeps its whole history in one workflow run may take: each costs up to about
 * 30 history events and Temporal ends a run at 51,200, half way through a fleet. A rolling in-place rollout goes
 * on in new runs instead, so it takes any number.
 */
export const maxServersInOneRun = 1_000;

/** Whether a fleet strategy continues as new when its history fills up (rolling in place), taking any size. */
export function spansRuns(strategy: { type: string; method?: string }): boolean {
  return strategy.type === 'rolling' && strategy.method !== 'replace';
}

/** Why a fleet of `servers` is too large for the strategy, or undefined when it is not. */
export function fleetTooLarge(
  strategy: { type: string; method?: string },
  servers: number,
): string | undefined {
  if (spansRuns(strategy) || servers <= maxServersInOneRun) return undefined;
  const name = strategy.type === 'rolling' ? 'rolling with method replace' : strategy.type;
  return `expected at most ${maxServersInOneRun} servers for the ${name} strategy (its history must fit one workflow run), got ${servers}; a rolling in-place rollout takes any number`;
}
