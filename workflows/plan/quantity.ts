/**
 * A count of servers or pods, or a percentage of the total: the `2` or `"25%"` a user writes for batch size,
 * maxSurge and maxUnavailable (Kubernetes' IntOrString).
 */
export type Quantity =
  | { readonly kind: 'count'; readonly value: number }
  | { readonly kind: 'percent'; readonly value: number };

export type Rounding = 'up' | 'down';

export const count = (value: number): Quantity => ({ kind: 'count', value });
export const percent = (value: number): Quantity => ({ kind: 'percent', value });

/**
 * Resolves a quantity against a total. Percentages round the way Kubernetes rounds them: up for surge and batch
 * sizes (so "10%" of 3 servers still moves one), down for unavailability (so "10%" of 3 never takes one out).
 *
 * resolveQuantity(percent(25), 10, 'up') === 3; resolveQuantity(percent(25), 10, 'down') === 2
 */
export function resolveQuantity(quantity: Quantity, total: number, rounding: Rounding): number {
  if (quantity.kind === 'count') return quantity.value;
  const exact = (quantity.value * total) / 100;
  // Guard against binary floating point: 7% of 100 is 7.000000000000001.
  const cleaned = Math.round(exact * 1e9) / 1e9;
  return rounding === 'up' ? Math.ceil(cleaned) : Math.floor(cleaned);
}

export function formatQuantity(quantity: Quantity): string {
  return quantity.kind === 'count' ? String(quantity.value) : `${quantity.value}%`;
}
