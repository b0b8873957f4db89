import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Verb } from '../helpers/command-model';
import { unjustifiedRefusal } from '../helpers/command-model';
import type { RolloutStatus } from '../../workflows/messages';

const status = (phase: RolloutStatus['phase'], waitingFor?: 'resume' | 'promote') =>
  ({ phase, ...(waitingFor ? { waiting: { for: waitingFor, at: 'gate' } } : {}) }) as RolloutStatus;

const refusal = (
  verb: Verb,
  message: string,
  state: Partial<Parameters<typeof unjustifiedRefusal>[0]> = {},
) =>
  unjustifiedRefusal({
    verb,
    message: `${verb} refused: ${message}`,
    held: false,
    aborted: false,
    promoted: false,
    ended: false,
    before: status('progressing'),
    after: status('progressing'),
    ...state,
  });

describe("the command model's oracle: a refusal must name a reason the rollout's state bears out", () => {
  it('accepts refusals the state explains', () => {
    assert.equal(refusal('pause', 'the rollout is already paused: …', { held: true }), undefined);
    assert.equal(refusal('resume', 'the rollout is not paused: …'), undefined);
    assert.equal(
      refusal('resume', 'the rollout waits at the approval gate for promote, not resume: …', {
        after: status('paused', 'promote'),
      }),
      undefined,
    );
    assert.equal(refusal('abort', 'the rollout is already aborting: …', { aborted: true }), undefined);
    assert.equal(refusal('pause', 'the rollout has already succeeded: …', { ended: true }), undefined);
    assert.equal(refusal('promote', 'nothing to promote: the rollout is progressing …'), undefined);
  });

  it('fails a refusal of a valid command, whatever reason it gives', () => {
    // A Baton that refused every pause of a progressing rollout, saying it was paused.
    assert.match(refusal('pause', 'the rollout is already paused: …') ?? '', /does not bear out/);
    assert.match(
      refusal('resume', 'the rollout is not paused: …', { held: true }) ?? '',
      /does not bear out/,
    );
    assert.match(refusal('abort', 'the rollout is already aborting: …') ?? '', /does not bear out/);
    assert.match(refusal('pause', 'the rollout has already succeeded: …') ?? '', /does not bear out/);
    assert.match(
      refusal('promote', 'nothing to promote: …', {
        before: status('paused', 'promote'),
        after: status('paused', 'promote'),
      }) ?? '',
      /does not bear out/,
    );
    assert.match(refusal('pause', 'busy, try later') ?? '', /a reason the model does not know/);
  });
});
