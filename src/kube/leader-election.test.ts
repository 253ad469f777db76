import { describe, expect, it } from 'vitest';
import { MemoryKubeApi } from '../../test/support/fake-apiserver-memory.ts';
import { FakeStore } from '../../test/support/fake-apiserver-store.ts';
import { KubeApiError } from './errors.ts';
import type { KubeApi } from './kube-api.ts';
import { AlwaysLeader, LeaderElector } from './leader-election.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const TIMING = { leaseDurationSeconds: 0.6, renewDeadlineSeconds: 0.4, retryPeriodSeconds: 0.1 };

/** A view of the port that can be cut off the network (a partitioned node). */
function partitionable(api: KubeApi): { api: KubeApi; cut: () => void } {
  let down = false;
  const wrapped = new Proxy(api, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        down
          ? Promise.reject(new KubeApiError('KUBE_UNAVAILABLE', 'network partition'))
          : value.apply(target, args);
    },
  });
  return { api: wrapped, cut: () => (down = true) };
}

const elector = (api: KubeApi, identity: string) =>
  new LeaderElector({
    api,
    namespace: 'ns',
    name: 'lease',
    identity,
    ...TIMING,
    nowMs: Date.now,
    logger: quiet,
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LeaderElector', () => {
  it('never has two leaders, and a partitioned leader stops writing before the follower takes over', async () => {
    const memory = new MemoryKubeApi(new FakeStore());
    const a = partitionable(memory);
    const electA = elector(a.api, 'a');
    const electB = elector(memory, 'b');
    const stopA = new AbortController();
    const stopB = new AbortController();
    const runA = electA.run(stopA.signal);
    await sleep(200);
    const runB = electB.run(stopB.signal);
    const samples: Array<[boolean, boolean]> = [];
    const sampler = setInterval(() => samples.push([electA.isLeader(), electB.isLeader()]), 10);
    await sleep(500);
    expect(electA.isLeader()).toBe(true);
    expect(electB.leader()).toBe('a');
    const cutAt = Date.now();
    a.cut();
    while (!electB.isLeader()) {
      if (Date.now() - cutAt > 3000) throw new Error('no takeover');
      await sleep(10);
    }
    const takeoverMs = Date.now() - cutAt;
    clearInterval(sampler);
    expect(samples.some(([x, y]) => x && y)).toBe(false);
    expect(electA.isLeader()).toBe(false);
    // lease 600 ms after the last observed renewal, plus a jittered retry (<= 120 ms) and scheduling slack.
    expect(takeoverMs).toBeLessThan(600 + 120 + 400);
    stopA.abort();
    stopB.abort();
    await Promise.all([runA, runB]);
  });

  it('releases on stop so the next candidate leads at once', async () => {
    const api = new MemoryKubeApi(new FakeStore());
    const first = elector(api, 'first');
    const stop = new AbortController();
    const run = first.run(stop.signal);
    while (!first.isLeader()) await sleep(10);
    stop.abort();
    await run;
    const lease = await api.getLease('ns', 'lease', AbortSignal.timeout(1000));
    expect(lease?.holderIdentity).toBeUndefined();
    const second = elector(api, 'second');
    const stop2 = new AbortController();
    const started = Date.now();
    const run2 = second.run(stop2.signal);
    while (!second.isLeader()) await sleep(5);
    expect(Date.now() - started).toBeLessThan(300);
    expect((await api.getLease('ns', 'lease', AbortSignal.timeout(1000)))?.leaseTransitions).toBe(1);
    stop2.abort();
    await run2;
  });

  it('loses leadership when renewals fail past the renew deadline', async () => {
    const memory = new MemoryKubeApi(new FakeStore());
    const a = partitionable(memory);
    const lost: string[] = [];
    const e = new LeaderElector({
      api: a.api,
      namespace: 'ns',
      name: 'lease',
      identity: 'a',
      ...TIMING,
      nowMs: Date.now,
      logger: quiet,
      onStoppedLeading: () => lost.push('lost'),
    });
    const stop = new AbortController();
    const run = e.run(stop.signal);
    while (!e.isLeader()) await sleep(10);
    a.cut();
    await sleep(450);
    expect(e.isLeader()).toBe(false);
    await sleep(200);
    expect(lost).toEqual(['lost']);
    stop.abort();
    await run;
  });

  it('refuses timings where the renew deadline is not below the lease', () => {
    expect(
      () =>
        new LeaderElector({
          api: new MemoryKubeApi(),
          namespace: 'n',
          name: 'l',
          identity: 'x',
          leaseDurationSeconds: 5,
          renewDeadlineSeconds: 5,
          nowMs: Date.now,
          logger: quiet,
        }),
    ).toThrow(RangeError);
    expect(new AlwaysLeader('solo').isLeader()).toBe(true);
  });
});
