import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { quietBundlerLogger, workflowBundle } from '../helpers/temporal';
import { replayScenarios } from './scenarios';

const history = (name: string) =>
  historyFromJSON(JSON.parse(readFileSync(join(__dirname, 'histories', `${name}.json`), 'utf8')));

describe('replay of saved rollout histories', () => {
  for (const scenario of replayScenarios) {
    it(`replays ${scenario.name} with today's workflow code`, async () => {
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history(scenario.name));
    });
  }

  it('catches a workflow change that would break running rollouts as nondeterministic', async () => {
    const changed = await bundleWorkflowCode({
      workflowsPath: require.resolve('./changed-workflow'),
      logger: quietBundlerLogger,
    });
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle: changed }, history('rolling-succeeds')),
      DeterminismViolationError,
    );
  });
});
