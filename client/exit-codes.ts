/** Exit codes of the baton CLI, the same for every command. */
export const exitCodes = {
  ok: 0,
  /** The rollout failed or was rolled back (or Temporal could not be reached). */
  failed: 1,
  /** Bad input: a spec, a flag or an argument; nothing was changed. */
  badInput: 2,
  /** The rollout was not found, or another one holds the target. */
  notFoundOrConflict: 3,
} as const;
