import { describe, expect, it } from 'vitest';
import { MemoryKubeApi } from '../../test/support/fake-apiserver-memory.ts';
import { FakeStore, resourceKey } from '../../test/support/fake-apiserver-store.ts';
import { InvalidInputError } from '../errors.ts';
import { KubeApiError } from '../kube/errors.ts';
import type { CommandIo } from './command.ts';
import { createStatusCommand, shortAge } from './status.ts';

const TKS = resourceKey('tokenscaler.dev', 'v1alpha1', 'tokenscalers');
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

function setup(tty: boolean) {
  const store = new FakeStore({ nowMs: () => NOW - 3_600_000 });
  const api = new MemoryKubeApi(store);
  store.create(TKS, 'inference', {
    apiVersion: 'tokenscaler.dev/v1alpha1',
    kind: 'TokenScaler',
    metadata: { name: 'llama' },
    spec: {
      scaleTargetRef: { name: 'vllm' },
      maxReplicas: 8,
      model: { preset: 'llama-3.1-8b' },
      accelerator: { preset: 'h100-80gb' },
      engine: { kind: 'vllm' },
      metrics: { scrape: { urls: ['http://10.0.0.1:8000/metrics'] } },
    },
  });
  store.mergePatch(
    TKS,
    'inference',
    'llama',
    {
      status: {
        desiredReplicas: 4,
        currentReplicas: 3,
        readyReplicas: 3,
        bindingConstraint: 'fallback',
        reason: 'fallback: no token metrics for 130s',
        fallbackActive: true,
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'Deciding',
            message: 'ok',
            lastTransitionTime: '2026-01-01T11:00:00Z',
          },
          {
            type: 'MetricsAvailable',
            status: 'False',
            reason: 'FallbackActive',
            message: 'fallback: no token metrics for 130s',
            lastTransitionTime: '2026-01-01T11:57:50Z',
          },
        ],
      },
    },
    'status',
  );
  const out: string[] = [];
  const err: string[] = [];
  const io = (env: Record<string, string> = {}): CommandIo => ({
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    env,
    cwd: '/',
    signal: new AbortController().signal,
    nowMs: () => NOW,
  });
  const command = createStatusCommand({
    connect: () => ({ api, namespace: 'inference' }),
    stdoutIsTty: () => tty,
  });
  return { command, io, out, err, api };
}

describe('tokenscaler status', () => {
  it('colours conditions on a terminal, and not with NO_COLOR or off a terminal', async () => {
    const tty = setup(true);
    expect(await tty.command([], tty.io())).toBe(0);
    expect(tty.out.join('')).toContain('MetricsAvailable=\u001b[31mFalse\u001b[0m FallbackActive (2m)');
    expect(tty.out.join('')).toContain('FALLBACK');
    const noColor = setup(true);
    await noColor.command([], noColor.io({ NO_COLOR: '1' }));
    expect(noColor.out.join('')).not.toContain('\u001b[');
    const pipe = setup(false);
    await pipe.command(['llama'], pipe.io());
    expect(pipe.out.join('')).toContain('Conditions Ready=True Deciding (60m)');
    expect(pipe.out.join('')).not.toContain('\u001b[');
  });

  it('rejects a name with --all-namespaces, two names, and an unknown output format', async () => {
    const s = setup(false);
    await expect(s.command(['llama', '-A'], s.io())).rejects.toThrow(InvalidInputError);
    await expect(s.command(['a', 'b'], s.io())).rejects.toThrow(/at most one TokenScaler name/);
    await expect(s.command(['-o', 'table'], s.io())).rejects.toThrow(/--output/);
  });

  it('says when the CRD is not installed', async () => {
    const s = setup(false);
    s.api.fail({ op: 'listTokenScalers', code: 'KUBE_NOT_FOUND', times: 1 });
    await expect(s.command([], s.io())).rejects.toThrow(/is the CRD installed/);
    s.api.fail({ op: 'listTokenScalers', code: 'KUBE_FORBIDDEN', times: 1 });
    await expect(s.command([], s.io())).rejects.toThrow(KubeApiError);
  });

  it.each([
    [undefined, '?'],
    [59, '59s'],
    [125, '2m'],
    [7300, '2h'],
    [200_000, '2d'],
  ])('ages %s seconds as %s', (seconds, text) => {
    expect(shortAge(seconds)).toBe(text);
  });
});
