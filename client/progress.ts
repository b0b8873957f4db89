import type { AnalysisRecord, RolloutStatus, ServerStatus } from '../workflows/messages';

const colours = {
  reset: '\x1b[0m',
  dim: '\x1b[2m',
  green: '\x1b[32m',
  yellow: '\x1b[33m',
  red: '\x1b[31m',
  cyan: '\x1b[36m',
} as const;

/** Colour only on a terminal, and never when NO_COLOR is set (no-color.org). */
export function useColour(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !('NO_COLOR' in env && env.NO_COLOR !== '');
}

function stepColour(server: ServerStatus): keyof typeof colours {
  switch (server.step) {
    case 'done':
      return 'green';
    case 'failed':
      return 'red';
    case 'pending':
    case 'restored':
      return 'dim';
    case 'restoring':
      return 'yellow';
    default:
      return 'cyan';
  }
}

/** One analysis in a line: "analysis 2 passed: canary 120 req, 0% 5xx, 21 ms; stable 480 req, 0% 5xx, 20 ms". */
export function describeAnalysis(analysis: AnalysisRecord): string {
  const outcome = analysis.passed ? 'passed' : 'failed';
  const figures =
    analysis.canary && analysis.stable
      ? `canary ${analysis.canary.requests} req, ${analysis.canary.errorRate}% 5xx, ${analysis.canary.responseTimeMs} ms; stable ${analysis.stable.requests} req, ${analysis.stable.errorRate}% 5xx, ${analysis.stable.responseTimeMs} ms`
      : (analysis.summary ?? '');
  const problems = analysis.problems.length > 0 ? ` (${analysis.problems.join('; ')})` : '';
  return `analysis ${analysis.step} ${outcome}: ${figures}${problems}`;
}

/**
 * The rollout as lines of text: a header, then one line per server with its version and current step, or per
 * Deployment with its replicas.
 */
export function renderStatus(
  status: RolloutStatus,
  options: { colour: boolean; elapsedS?: number },
): string[] {
  const paint = (colour: keyof typeof colours, text: string) =>
    options.colour ? `${colours[colour]}${text}${colours.reset}` : text;
  const phaseColour =
    status.phase === 'succeeded'
      ? 'green'
      : status.phase === 'rolled-back' || status.phase === 'failed'
        ? 'red'
        : 'yellow';
  const elapsed = options.elapsedS === undefined ? '' : `  ${options.elapsedS.toFixed(1)}s`;
  const width = Math.max(...status.servers.map((s) => s.name.length), 4);
  const deployments = status.kubernetes?.deployments ?? [];
  const deploymentWidth = Math.max(...deployments.map((d) => d.name.length), 4);
  const canary = status.canary;
  const where = canary
    ? `step ${Math.min(canary.step, canary.steps)}/${canary.steps}${canary.step > canary.steps ? ' promoting' : ''}  weight ${canary.weight}%`
    : status.kubernetes
      ? `${status.kubernetes.desired} replicas`
      : `batch ${status.batch}/${status.batches}`;
  return [
    `${status.target}  ${status.strategy}  → ${status.toVersion}  ${where}  ${paint(phaseColour, status.phase)}${elapsed}`,
    ...deployments.map(
      (d) =>
        `  ${d.name.padEnd(deploymentWidth)}  ${d.role.padEnd(6)}  ${d.version.padEnd(8)}  ${d.available}/${d.replicas} available`,
    ),
    ...status.servers.map((server) => {
      const version = server.version ?? '?';
      const note = server.error
        ? `  ${paint('red', server.error.split('\n')[0] ?? '')}`
        : server.drainForced
          ? '  (drain forced)'
          : '';
      return `  ${server.name.padEnd(width)}  ${version.padEnd(8)}  ${paint(stepColour(server), server.step)}${note}`;
    }),
    ...(canary?.analyses ?? []).map((a) => `  ${paint(a.passed ? 'green' : 'red', describeAnalysis(a))}`),
    ...(status.reason ? [`  reason: ${status.reason}`] : []),
  ];
}

/**
 * Shows a rollout's progress: redrawn in place on a terminal, one line per change otherwise (for logs and CI),
 * so a piped `baton start` reads as a history of steps.
 */
export class ProgressView {
  private drawnLines = 0;
  private readonly lastSteps = new Map<string, string>();
  private lastPhase = '';
  private readonly started = Date.now();

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly colour = useColour(stream),
  ) {}

  update(status: RolloutStatus): void {
    if (this.stream.isTTY) {
      const lines = renderStatus(status, {
        colour: this.colour,
        elapsedS: (Date.now() - this.started) / 1000,
      });
      const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
      this.stream.write(`${up}${lines.map((l) => `\x1b[2K${l}`).join('\n')}\n`);
      this.drawnLines = lines.length;
      return;
    }
    if (status.phase !== this.lastPhase) {
      this.stream.write(`${status.target}: ${status.phase}${status.reason ? ` (${status.reason})` : ''}\n`);
      this.lastPhase = status.phase;
    }
    if (status.canary) {
      const key = `${status.canary.step}/${status.canary.weight}`;
      if (this.lastSteps.get('canary') !== key) {
        this.lastSteps.set('canary', key);
        const { step, steps, weight } = status.canary;
        this.stream.write(
          `  canary: ${step > steps ? 'promoting' : `step ${step}/${steps}`}, weight ${weight}%\n`,
        );
      }
      for (const analysis of status.canary.analyses) {
        if (this.lastSteps.has(`analysis/${analysis.step}/${analysis.at}`)) continue;
        this.lastSteps.set(`analysis/${analysis.step}/${analysis.at}`, '');
        this.stream.write(`  ${describeAnalysis(analysis)}\n`);
      }
    }
    for (const d of status.kubernetes?.deployments ?? []) {
      const key = `${d.version}/${d.replicas}/${d.available}`;
      if (this.lastSteps.get(`deployment/${d.name}`) !== key) {
        this.lastSteps.set(`deployment/${d.name}`, key);
        this.stream.write(`  ${d.name} (${d.role}, ${d.version}): ${d.available}/${d.replicas} available\n`);
      }
    }
    for (const server of status.servers) {
      const key = `${server.step}/${server.version ?? ''}`;
      if (this.lastSteps.get(server.name) !== key) {
        this.lastSteps.set(server.name, key);
        if (server.step !== 'pending')
          this.stream.write(
            `  ${server.name}: ${server.step}${server.version ? ` (${server.version})` : ''}\n`,
          );
      }
    }
  }
}
