import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import { ensureChromium } from '../../infra/debian';
import { startRolloutInProcess, until } from '../helpers/rollout';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal, uniqueTaskQueue, workflowBundle } from '../helpers/temporal';
import { startRollout } from '../../client/rollouts';
import { createBatonWorker } from '../../worker/create-worker';
import { lockWorkflowId } from '../../workflows/messages';

/** Where the screenshot is kept for people (and CI) to look at; ignored by git. */
const artifactsDir = join(__dirname, '..', '..', 'test-artifacts');

/** Runs `use` on a page of Debian's headless Chromium, closing the browser whatever happens. */
async function onPage(use: (page: Page) => Promise<void>): Promise<void> {
  const browser = await chromium.launch({
    executablePath: await ensureChromium(),
    headless: true,
    // The sandbox needs user namespaces, which containers and root sessions often lack.
    args: ['--no-sandbox'],
  });
  try {
    await use(await browser.newPage({ viewport: { width: 1600, height: 1200 } }));
  } finally {
    await browser.close();
  }
}

let temporal: TestTemporal;
before(async () => {
  temporal = await connectTestTemporal();
});
after(async () => temporal.close());

describe('the Temporal UI (Debian Chromium driven by playwright-core)', () => {
  it("shows a rollout's history with Baton's step summaries", async () => {
    const fleet = new InMemoryFleet(serverNames(3), 'v1');
    const { handle, stop } = await startRolloutInProcess(
      temporal,
      fleet.deps(),
      inMemoryFleetSpec(3, { strategy: { type: 'rolling', batchSize: 1 } }, 'ui-web'),
    );
    try {
      assert.equal((await handle.result()).phase, 'succeeded');
    } finally {
      await stop();
    }
    const description = await handle.describe();
    await onPage(async (page) => {
      const url = `${temporal.uiUrl}/namespaces/${temporal.namespace}/workflows/${encodeURIComponent(handle.workflowId)}/${description.runId}/history`;
      await page.goto(url, { waitUntil: 'domcontentloaded' });
      // Activity summaries name the step and the server, instead of bare activity names.
      for (const summary of [
        'preflight ui-web',
        'drain web-2',
        'upgrade web-3 to v2',
        'verify web-1 runs v2',
      ]) {
        await page.getByText(summary, { exact: false }).first().waitFor({ timeout: 60_000 });
      }
      await mkdir(artifactsDir, { recursive: true });
      await page.screenshot({ path: join(artifactsDir, 'temporal-ui-history.png'), fullPage: true });
    });
  });

  it('lists rollouts, not their locks, in the workflow list as it opens', async () => {
    const fleet = new InMemoryFleet(serverNames(2), 'v1');
    const taskQueue = uniqueTaskQueue('ui-list');
    const worker = await createBatonWorker({
      connection: temporal.nativeConnection,
      namespace: temporal.namespace,
      taskQueue,
      deps: fleet.deps(),
      workflowBundle: await workflowBundle(),
    });
    const running = worker.run();
    const spec = inMemoryFleetSpec(2, { strategy: { type: 'rolling', batchSize: 1 } }, 'ui-listed');
    try {
      // As `baton start` does: the lock first, then the rollout.
      const handle = await startRollout(temporal.client, spec, { taskQueue });
      assert.equal((await handle.result()).phase, 'succeeded');
      // The lock ends in its own workflow task once the release has reached it.
      const lock = temporal.client.workflow.getHandle(lockWorkflowId(spec.target, taskQueue));
      await until(async () => (await lock.describe()).status.name === 'COMPLETED', 15_000);
    } finally {
      worker.shutdown();
      await running;
    }
    const lockId = lockWorkflowId(spec.target, taskQueue);
    await onPage(async (page) => {
      await page.goto(`${temporal.uiUrl}/namespaces/${temporal.namespace}/workflows`, {
        waitUntil: 'domcontentloaded',
      });
      await page.getByText('rollout/ui-listed', { exact: false }).first().waitFor({ timeout: 60_000 });
      const text = await page.locator('body').innerText();
      assert.ok(text.includes('rolloutWorkflow'), 'rollouts are listed');
      assert.ok(!text.includes('infrastructureLockWorkflow'), 'no lock is listed');
      assert.ok(!text.includes(lockId), `the rollout's lock ${lockId} is not listed`);
      await mkdir(artifactsDir, { recursive: true });
      await page.screenshot({ path: join(artifactsDir, 'temporal-ui-list.png'), fullPage: true });
    });
  });
});
