import type { ActivityOptions } from '@temporalio/workflow';
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { RolloutNotification, sendWebhook } from '../activities/notify/webhook';
import type { NotificationEvent, RolloutSpec } from '../spec/rollout';
import type { RolloutPhase } from './messages';
import type { RolloutState } from './state';

/** A receiver down for a few minutes still gets the event; one that refuses it (4xx) is not asked again. */
const notifyProfile = {
  startToCloseTimeout: '30s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 8,
    nonRetryableErrorTypes: ['NotificationRejected', 'NotificationMisconfigured'],
  },
} as const satisfies ActivityOptions;

const { sendWebhook: send } = proxyActivities<{ sendWebhook: typeof sendWebhook }>(notifyProfile);

const eventOfPhase: Partial<Record<RolloutPhase, NotificationEvent>> = {
  paused: 'paused',
  succeeded: 'succeeded',
  'rolled-back': 'rolled-back',
  failed: 'failed',
};

/**
 * Tells the spec's webhook about phase changes, each as its own activity with retries. Sending never holds the
 * rollout back; `flush` waits for what is queued before the workflow ends, so the last event is not lost.
 */
export class Notifier {
  private queue: Promise<void> = Promise.resolve();
  /** `started`: the rollout began in an earlier run, which announced it. */
  constructor(
    private readonly spec: RolloutSpec,
    private readonly state: RolloutState,
    private started = false,
  ) {}

  changed(change: RolloutPhase | 'promoted'): void {
    if (change === 'promoted') {
      this.send('promoted');
      return;
    }
    const phase = change;
    if (phase === 'progressing' && !this.started) {
      this.started = true;
      this.send('started');
    }
    const event = eventOfPhase[phase];
    if (event) this.send(event);
  }

  send(event: NotificationEvent): void {
    const webhook = this.spec.notify?.webhook;
    if (!webhook || !webhook.events.includes(event)) return;
    const status = this.state.status();
    const notification: RolloutNotification = {
      event,
      target: this.spec.target.name,
      strategy: this.spec.strategy.type,
      ...(this.state.fromVersion !== undefined ? { fromVersion: this.state.fromVersion } : {}),
      toVersion: this.spec.version,
      ...(status.reason !== undefined && event !== 'started' ? { reason: status.reason } : {}),
      workflowId: workflowInfo().workflowId,
      at: new Date().toISOString(),
    };
    // One at a time, so receivers hear events in the order they happened even when one needs retries. A
    // notification that fails for good is logged by the SDK; it never fails the rollout.
    this.queue = this.queue.then(() =>
      send
        .executeWithOptions({ ...notifyProfile, summary: `notify ${event}` }, [{ webhook, notification }])
        .catch(() => undefined),
    );
  }

  flush(): Promise<void> {
    return this.queue;
  }
}
