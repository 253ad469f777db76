import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.ts';
import { normalizeClusterArgs, parseDurationFlag } from './cluster-mode.ts';
import { otherReplicasOwner } from './replicas-fight.ts';

describe('duration flags as kube-controller-manager takes them', () => {
  it.each([
    ['15s', 15],
    ['1m30s', 90],
    ['500ms', 0.5],
    ['2', 2],
    ['1h', 3600],
    [undefined, undefined],
  ])('%s -> %s seconds', (raw, seconds) => {
    expect(parseDurationFlag('leader-elect-lease-duration', raw)).toBe(seconds);
  });

  it.each(['fifteen', '15x', '0s', '', '-5s', '5s junk'])('rejects %j naming the flag', (raw) => {
    expect(() => parseDurationFlag('leader-elect-lease-duration', raw)).toThrow(InvalidInputError);
    expect(() => parseDurationFlag('leader-elect-lease-duration', raw)).toThrow(
      /--leader-elect-lease-duration/,
    );
  });

  it('reads a bare --leader-elect as true', () => {
    expect(normalizeClusterArgs(['--leader-elect', '--leader-elect=false', '--namespace', 'a'])).toEqual([
      '--leader-elect=true',
      '--leader-elect=false',
      '--namespace',
      'a',
    ]);
  });
});

describe('who else writes spec.replicas', () => {
  const replicas = { 'f:spec': { 'f:replicas': {} } };
  it.each([
    [
      'the HPA alone',
      [
        {
          manager: 'kube-controller-manager',
          subresource: 'scale',
          time: '2026-01-01T00:00:00Z',
          fieldsV1: replicas,
        },
      ],
      undefined,
    ],
    [
      'a GitOps tool after the HPA',
      [
        {
          manager: 'kube-controller-manager',
          subresource: 'scale',
          time: '2026-01-01T00:00:00Z',
          fieldsV1: replicas,
        },
        {
          manager: 'argocd-controller',
          operation: 'Apply',
          time: '2026-01-01T00:05:00Z',
          fieldsV1: replicas,
        },
      ],
      'argocd-controller',
    ],
    [
      'a manager of other fields only',
      [{ manager: 'helm', time: '2026-01-01T00:05:00Z', fieldsV1: { 'f:spec': { 'f:template': {} } } }],
      undefined,
    ],
    [
      'the newest of two writers',
      [
        { manager: 'helm', time: '2026-01-01T00:01:00Z', fieldsV1: replicas },
        { manager: 'kubectl-edit', time: '2026-01-01T00:09:00Z', fieldsV1: replicas },
      ],
      'kubectl-edit',
    ],
  ])('%s', (_name, entries, expected) => {
    expect(otherReplicasOwner(entries)).toBe(expected);
  });
});
