import { describe, expect, it } from 'vitest';
import { decideThrottle, type ThrottleSettings } from '../../../lambdas/core/throttler.ts';

const s: ThrottleSettings = { maxThreadsRunning: 25, maxReplicaLagSeconds: 10, waitSeconds: 7 };

describe('decideThrottle', () => {
  it('lets a quiet server copy', () => {
    expect(decideThrottle({ threadsRunning: { edxapp: 3 }, paused: false }, s)).toEqual({ throttled: false });
  });

  it('waits when Threads_running is over the limit on any server, naming it', () => {
    const d = decideThrottle({ threadsRunning: { edxapp: 3, csmh: 40 }, paused: false }, s);
    expect(d).toEqual({ throttled: true, reason: 'Threads_running 40 > 25 on csmh', waitSeconds: 7 });
  });

  it('allows exactly the limit', () => {
    expect(decideThrottle({ threadsRunning: { edxapp: 25 }, paused: false }, s).throttled).toBe(false);
  });

  it('waits on replica lag, and on a replica that is not replicating', () => {
    expect(decideThrottle({ threadsRunning: {}, replicaLagSeconds: 11, paused: false }, s)).toMatchObject({ reason: 'replica lag 11s > 10s' });
    expect(decideThrottle({ threadsRunning: {}, replicaLagSeconds: null, paused: false }, s)).toMatchObject({ reason: expect.stringContaining('not replicating') });
    expect(decideThrottle({ threadsRunning: {}, replicaLagSeconds: 10, paused: false }, s).throttled).toBe(false);
  });

  it('waits when the throttle query returns more than zero, like gh-ost', () => {
    expect(decideThrottle({ threadsRunning: {}, throttleQueryValue: '1', paused: false }, s)).toMatchObject({ reason: 'the throttle query says wait (its value is above 0)' });
    // the value itself is never shown: a query could encode what it reads in it
    expect(JSON.stringify(decideThrottle({ threadsRunning: {}, throttleQueryValue: '4835745', paused: false }, s))).not.toContain('4835745');
    expect(decideThrottle({ threadsRunning: {}, throttleQueryValue: '0', paused: false }, s).throttled).toBe(false);
    expect(decideThrottle({ threadsRunning: {}, throttleQueryValue: null, paused: false }, s).throttled).toBe(false);
  });

  it('names every reason that holds', () => {
    const d = decideThrottle({ threadsRunning: { edxapp: 99 }, throttleQueryValue: '3', paused: true }, s);
    expect(d).toMatchObject({ throttled: true, reason: 'paused by the FERRY_PAUSED flag; Threads_running 99 > 25 on edxapp; the throttle query says wait (its value is above 0)' });
  });
});
