/**
 * Whether failures have gone past the budget, as Ansible's max_fail_percentage: the rollout stops when the share
 * of failed servers *exceeds* the percentage, so a budget of 0 stops at the first failure and 100 never stops.
 */
export function failureBudgetExceeded(failed: number, total: number, maxFailPercent: number): boolean {
  if (failed === 0 || total === 0) return false;
  return (failed * 100) / total > maxFailPercent;
}
