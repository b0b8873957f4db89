import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { CapacityTracker } from '../helpers/kubernetes';

const pod = (name: string, labels: Record<string, string>, ready = true): V1Pod => ({
  metadata: { name, labels },
  status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});
const blue = { app: 'web', version: 'blue' };
const green = { app: 'web', version: 'green' };

describe("the capacity watch's tracker: fed streams that should and should not pass", () => {
  it('counts serving pods by the selector in force, following a switch', () => {
    const b1 = pod('b1', blue);
    const b2 = pod('b2', blue);
    const tracker = new CapacityTracker(blue, [b1, b2]);
    tracker.pod('ADDED', pod('g1', green, false));
    tracker.pod('MODIFIED', pod('g1', green));
    tracker.selectorChanged(green);
    // Switched to a set of one Ready pod: serving fell to 1.
    const report = tracker.report([b1, b2, pod('g1', green)]);
    assert.equal(report.minServing, 1);
    assert.equal(report.maxPods, 3);
    assert.equal(report.events, 2);
  });

  it('fails when the watch ended before it was stopped: its figures froze', () => {
    const tracker = new CapacityTracker(blue, [pod('b1', blue)]);
    tracker.end('the pod watch: the server closed it');
    // Had it run on, it would have seen b1 go; it reports nothing rather than a stale minimum.
    assert.throws(
      () => tracker.report([]),
      /ended before the rollout did: the pod watch: the server closed it/,
    );
  });

  it('fails when what it holds differs from a fresh list: it missed events', () => {
    const tracker = new CapacityTracker(blue, [pod('b1', blue), pod('b2', blue)]);
    tracker.pod('DELETED', pod('b2', blue));
    assert.throws(
      () => tracker.report([pod('b1', blue, false)]),
      /fell behind: it holds \[b1 ready\], the API lists \[b1 not-ready\]/,
    );
  });

  it('counts no pod as serving under an empty selector', () => {
    const tracker = new CapacityTracker({}, [pod('b1', blue)]);
    assert.equal(tracker.report([pod('b1', blue)]).minServing, 0);
  });
});
