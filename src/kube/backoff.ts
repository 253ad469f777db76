/**
 * @module Exponential backoff with jitter for restarting watches and retrying writes. Full jitter
 * (AWS architecture blog, "Exponential Backoff And Jitter"): the delay is uniform in
 * [cap/2, cap] with cap = min(max, initial x 2^attempt), so many controllers that lost the API
 * server at the same moment do not come back in lockstep, yet none retries sooner than half the cap.
 * Example with initial 500 ms, max 30 s: attempt 0 waits 250-500 ms, attempt 3 2-4 s, attempt 6+ 15-30 s.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000 };

export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number): number {
  const cap = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(cap / 2 + (cap / 2) * random());
}

/** Resolves after `ms`, or early (without throwing) when the signal aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
