import { ensureGoBinary } from './go-install';

/**
 * Pinned versions of every real component Baton's demo and tests run. The Temporal CLI stays at v1.5.1: later
 * tags carry a `replace` directive in go.mod, which `go install module@version` refuses.
 */
export const versions = {
  temporalCli: 'v1.5.1',
} as const;

export function ensureTemporalCli(): Promise<string> {
  return ensureGoBinary({
    name: 'temporal-cli',
    module: 'github.com/temporalio/cli/cmd/temporal',
    version: versions.temporalCli,
    binary: 'temporal',
  });
}
