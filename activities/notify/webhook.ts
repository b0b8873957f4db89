import { ApplicationFailure, Context } from '@temporalio/activity';
import type { NotificationEvent, Webhook } from '../../spec/rollout';

/** What a webhook receives about one rollout event. */
export interface RolloutNotification {
  readonly event: NotificationEvent;
  readonly target: string;
  readonly strategy: string;
  readonly fromVersion?: string;
  readonly toVersion: string;
  readonly reason?: string;
  readonly workflowId: string;
  /** Workflow time of the event, ISO 8601. */
  readonly at: string;
}

const verbs: Record<NotificationEvent, string> = {
  started: 'started',
  paused: 'paused',
  promoted: 'promoted',
  succeeded: 'succeeded',
  'rolled-back': 'rolled back',
  failed: 'failed',
};

/** A Slack-compatible message (incoming webhooks take `{"text": ...}`; mrkdwn for the target's name). */
export function slackMessage(n: RolloutNotification): { text: string } {
  const versions = n.fromVersion ? `${n.fromVersion} → ${n.toVersion}` : n.toVersion;
  return {
    text: `Rollout of *${n.target}* (${n.strategy}, ${versions}) ${verbs[n.event]}${n.reason ? `: ${n.reason}` : ''}`,
  };
}

/**
 * POSTs one rollout event to a webhook. The URL is resolved here, from the worker's environment when the spec
 * names a variable, so it stays out of the workflow history. Non-2xx answers fail the attempt (the activity's
 * retry policy backs off); 4xx other than 408 and 429 fail for good.
 */
export async function sendWebhook(input: {
  webhook: Webhook;
  notification: RolloutNotification;
}): Promise<void> {
  const { webhook, notification } = input;
  const url = webhook.url ?? (webhook.urlFromEnv ? process.env[webhook.urlFromEnv] : undefined);
  if (!url)
    throw ApplicationFailure.nonRetryable(
      `notify.webhook.urlFromEnv: the worker has no environment variable ${webhook.urlFromEnv}`,
      'NotificationMisconfigured',
    );
  const body = webhook.format === 'slack' ? slackMessage(notification) : notification;
  const signal = AbortSignal.any([AbortSignal.timeout(10_000), Context.current().cancellationSignal]);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'baton' },
    body: JSON.stringify(body),
    signal,
  });
  await response.body?.cancel();
  if (response.ok) return;
  const message = `webhook answered HTTP ${response.status} for the ${notification.event} event`;
  if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429)
    throw ApplicationFailure.nonRetryable(message, 'NotificationRejected');
  throw ApplicationFailure.retryable(message, 'NotificationFailed');
}
