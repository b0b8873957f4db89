/**
 * Failure types that activities raise and workflows react to: the contract between the two layers, in plain strings
 * (no imports), so that workflow code can import them.
 */

/**
 * A load balancer step found HAProxy reloaded since the rollout last looked: the workflow puts its runtime state
 * back and runs the step again.
 */
export const loadBalancerReloaded = 'LoadBalancerReloaded';
