/**
 * The failure type of a load balancer step that found HAProxy reloaded since the rollout last looked: the
 * workflow puts its runtime state back and runs the step again. A plain string, so workflow code can import it.
 */
export const loadBalancerReloaded = 'LoadBalancerReloaded';
