/**
 * Two controller processes against one fake API server (real client-node in each): exactly one
 * leader, only the leader writes, the follower takes over within the lease duration after the leader
 * is killed, and a SIGTERM releases the Lease at once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeApiServer, startFakeApiServer } from './support/fake-apiserver.ts';
import { crdStore, LEASES, seedWorkload, TKS, tokenScaler } from './support/fake-apiserver-fixtures.ts';

const SCRIPT = join(import.meta.dirname, 'support', 'fake-apiserver-controller-process.ts');
const LEASE_SECONDS = 3;
const RETRY_SECONDS = 0.5;

interface Report {
  identity: string;
  leader?: boolean;
  holder?: string | null;
  atMs?: number;
  stopped?: boolean;
}

class Controller {
  readonly reports: Report[] = [];
  readonly child: ChildProcess;
  stderr = '';
  constructor(identity: string, kubeconfig: string) {
    this.child = spawn(process.execPath, [SCRIPT], {
      env: {
        ...process.env,
        KUBECONFIG: kubeconfig,
        IDENTITY: identity,
        TICK_MS: '250',
        LEASE_SECONDS: String(LEASE_SECONDS),
        RENEW_SECONDS: '2',
        RETRY_SECONDS: String(RETRY_SECONDS),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        this.reports.push(JSON.parse(line) as Report);
      } catch {
        // not a report
      }
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
  }
  get leading(): boolean {
    return this.reports.at(-1)?.leader === true;
  }
  exited(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null)
      return Promise.resolve(this.child.exitCode);
    return new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

describe('leader election across two controller processes', () => {
  let server: FakeApiServer;
  let dir: string;
  const processes: Controller[] = [];

  beforeAll(async () => {
    server = await startFakeApiServer({ store: crdStore() });
    seedWorkload(server.store, 'inference', 'vllm', 2, 2);
    server.store.create(TKS, 'inference', tokenScaler('inference', 'llama', { hpa: { create: true } }));
    dir = await mkdtemp(join(tmpdir(), 'tks-leader-'));
  });
  afterAll(async () => {
    for (const p of processes) p.child.kill('SIGKILL');
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(identity: string): Promise<Controller> {
    const file = join(dir, `${identity}.kubeconfig`);
    await writeFile(file, server.kubeconfig('inference', `token-${identity}`));
    const controller = new Controller(identity, file);
    processes.push(controller);
    return controller;
  }

  const writesBy = (token: string, sinceMs: number) =>
    server.requests.filter(
      (r) => r.token === token && r.atMs >= sinceMs && r.method !== 'GET' && !r.path.includes('/leases/'),
    );

  it('elects exactly one leader; only it writes; the follower takes over within the lease after a kill', async () => {
    const a = await start('a');
    await until('a to lead', () => a.leading, 20_000);
    const b = await start('b');
    await until('b to run', () => b.reports.length >= 5, 20_000);

    // Both run and decide; for two seconds exactly one reports leadership, and both name the same holder.
    const windowStart = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
    expect(a.reports.filter((r) => (r.atMs ?? 0) >= windowStart).every((r) => r.leader === true)).toBe(true);
    expect(
      b.reports
        .filter((r) => (r.atMs ?? 0) >= windowStart)
        .every((r) => r.leader === false && r.holder === 'a'),
    ).toBe(true);
    expect(writesBy('token-b', 0)).toEqual([]);
    expect(writesBy('token-a', 0).some((r) => r.path.endsWith('/tokenscalers/llama/status'))).toBe(true);
    expect(server.store.get(LEASES, 'inference', 'tokenscaler-controller').spec).toMatchObject({
      holderIdentity: 'a',
    });
    // The leader created the owned HPA.
    expect(
      writesBy('token-a', 0).some((r) => r.method === 'POST' && r.path.includes('horizontalpodautoscalers')),
    ).toBe(true);

    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await a.exited();
    const takeoverMs = await until('b to take over', () => b.leading, 15_000);
    // Failover bound: lease duration + one jittered retry period + one report period of slack.
    expect(takeoverMs).toBeLessThanOrEqual((LEASE_SECONDS + RETRY_SECONDS * 1.2) * 1000 + 1000);
    expect(server.store.get(LEASES, 'inference', 'tokenscaler-controller').spec).toMatchObject({
      holderIdentity: 'b',
      leaseTransitions: 1,
    });
    await until(
      'b to write status',
      () => writesBy('token-b', killedAt).some((r) => r.path.endsWith('/status')),
      5000,
    );

    // SIGTERM: b stops ticking, releases the Lease (empty holder) and exits cleanly.
    b.child.kill('SIGTERM');
    expect(await b.exited()).toBe(0);
    expect(b.reports.at(-1)?.stopped).toBe(true);
    const lease = server.store.get(LEASES, 'inference', 'tokenscaler-controller').spec as Record<
      string,
      unknown
    >;
    expect(lease.holderIdentity ?? null).toBeNull();

    // A newcomer acquires the released Lease at once instead of waiting out the lease duration.
    const c = await start('c');
    const acquireMs = await until('c to lead', () => c.leading, 10_000);
    expect(acquireMs).toBeLessThan(LEASE_SECONDS * 1000 + 3000);
    c.child.kill('SIGTERM');
    await c.exited();
  });
});
