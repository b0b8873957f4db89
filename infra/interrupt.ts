/**
 * What must happen before this process ends on SIGINT or SIGTERM. Node's default for both is to exit at once, and
 * the processes it started (a Temporal dev server, HAProxy, a fleet's hosts) go on running unless the signal
 * reached them too, as Ctrl-C in a terminal reaches its foreground process group but `kill` or a timeout does not.
 */
const cleanups = new Set<() => Promise<unknown>>();
let handling = false;

/** The exit status a shell gives a command ended by the signal. */
const signalExitCodes = { SIGINT: 130, SIGTERM: 143 } as const;

/** Signals this soon after the first are the same interrupt, relayed. */
const duplicateWindowMs = 1_000;

const newest = () => [...cleanups].at(-1);

async function cleanUpAndExit(signal: keyof typeof signalExitCodes): Promise<never> {
  // Each cleanup leaves the set once it has run, and so do the ones it runs itself (a scratch's close stops its
  // server): the newest left is taken each time, never one already done.
  for (let cleanup = newest(); cleanup; cleanup = newest()) {
    await cleanup().catch((error: unknown) =>
      process.stderr.write(`cleanup after ${signal}: ${String((error as Error)?.message ?? error)}\n`),
    );
  }
  process.exit(signalExitCodes[signal]);
}

/**
 * Registers `cleanup` to run if SIGINT or SIGTERM arrives, then the process exits with 130 or 143; cleanups run one
 * at a time, newest first, and a second signal during them (more than a second after the first) ends the process at
 * once.
 *
 * Returns `cleanup` made to run at most once, for the normal end to call instead: an interrupt that arrives while
 * it runs waits for that same run to finish, and one that arrives after it leaves it out.
 */
export function onInterrupt<T>(cleanup: () => Promise<T>): () => Promise<T> {
  if (!handling) {
    handling = true;
    const signals = ['SIGINT', 'SIGTERM'] as const;
    let first: { signal: (typeof signals)[number]; at: number } | undefined;
    const onSignal = (signal: (typeof signals)[number]) => {
      if (first === undefined) {
        first = { signal, at: performance.now() };
        void cleanUpAndExit(signal);
        return;
      }
      // One Ctrl-C often arrives twice: the terminal signals the whole foreground group, and a wrapper in it (npm,
      // tsx) relays the same signal to its child. Only a later one is the operator insisting: it ends at once.
      if (performance.now() - first.at < duplicateWindowMs) return;
      process.exit(signalExitCodes[first.signal]);
    };
    for (const signal of signals) process.on(signal, onSignal);
  }
  let run: Promise<T> | undefined;
  const once = () => {
    run ??= cleanup().finally(() => cleanups.delete(once));
    return run;
  };
  cleanups.add(once);
  return once;
}
