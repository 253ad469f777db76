/**
 * @module The HPA tokenscaler owns when `spec.hpa.create` is true: created, kept in line with the
 * scaler, and deleted when the scaler stops asking for it (leader only).
 *
 * The HPA reads the external metric `tokenscaler_desired_replicas` selected by
 * `tokenscaler.dev/name=<scaler>` with an `AverageValue` target of 1, so its desired count is
 * ceil(desired / 1) = the scaler's decision (reference/external-metrics-contract.md §0.3).
 *
 * Behavior defaults: `OWNED_HPA_BEHAVIOR` of src/core/owned-hpa.ts (Kubernetes' scale-up, no
 * scale-down stabilization because the scaler stabilizes itself, tolerance 0).
 *
 * Ownership: the HPA carries a controller ownerReference to the TokenScaler (garbage-collected with
 * it) and the label `app.kubernetes.io/managed-by: tokenscaler`. An HPA of the same name that is not
 * ours is never modified: the scaler gets an HPAConflict event instead.
 */
import { OWNED_HPA_BEHAVIOR } from '../core/owned-hpa.ts';
import type { DecisionListener, Logger, ScalerDefinition } from '../reconcile/ports.ts';
import type { ScalerState } from '../reconcile/scaler-state.ts';
import { hasCode } from './errors.ts';
import type { EventRecorder } from './events.ts';
import { type KubeApi, type KubeObject, TOKENSCALER_API_VERSION, TOKENSCALER_KIND } from './kube-api.ts';
import type { LeaderState } from './leader-election.ts';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'tokenscaler';
export const SCALER_LABEL = 'tokenscaler.dev/name';
export const DESIRED_REPLICAS_METRIC = 'tokenscaler_desired_replicas';

/** The owned HPA's behavior (src/core/owned-hpa.ts explains each setting). */
export const DEFAULT_BEHAVIOR = OWNED_HPA_BEHAVIOR;

/** The owned HPA's name: the scaler's, prefixed so it cannot collide with a hand-made HPA of the workload. */
export function hpaNameOf(scalerName: string): string {
  return `tokenscaler-${scalerName}`.slice(0, 253);
}

export function desiredHpa(scaler: ScalerDefinition): KubeObject {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: {
      name: hpaNameOf(scaler.name),
      namespace: scaler.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [SCALER_LABEL]: scaler.name },
      ...(scaler.uid === undefined
        ? {}
        : {
            ownerReferences: [
              {
                apiVersion: TOKENSCALER_API_VERSION,
                kind: TOKENSCALER_KIND,
                name: scaler.name,
                uid: scaler.uid,
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          }),
    },
    spec: {
      scaleTargetRef: { ...scaler.spec.scaleTargetRef },
      minReplicas: scaler.spec.minReplicas,
      maxReplicas: scaler.spec.maxReplicas,
      metrics: [
        {
          type: 'External',
          external: {
            metric: {
              name: DESIRED_REPLICAS_METRIC,
              selector: { matchLabels: { [SCALER_LABEL]: scaler.name } },
            },
            target: { type: 'AverageValue', averageValue: '1' },
          },
        },
      ],
      behavior: structuredClone(DEFAULT_BEHAVIOR),
    },
  } as KubeObject;
}

export interface HpaManagerOptions {
  api: KubeApi;
  leader: LeaderState;
  recorder: EventRecorder;
  logger: Logger;
  /**
   * Whether the TokenScaler still exists in the API server. A scaler leaves the loop both when it is
   * deleted and when the controller shuts down; only the first may delete its HPA.
   */
  exists: (namespace: string, name: string) => boolean;
  nowMs?: () => number;
  /** Re-read the HPA this often even when the scaler did not change, to undo hand edits (default 300). */
  resyncSeconds?: number;
}

export class HpaManager implements DecisionListener {
  readonly #options: HpaManagerOptions;
  /** Scalers whose HPA is known to match (by generation), so steady ticks cost no API call. */
  readonly #inSync = new Map<string, { stamp: string; atMs: number }>();
  readonly #known = new Map<string, ScalerDefinition>();

  constructor(options: HpaManagerOptions) {
    this.#options = options;
  }

  /** The HPA name to report in status, when the scaler asks for one. */
  hpaName(scaler: ScalerDefinition): string | undefined {
    return scaler.spec.hpa.create ? hpaNameOf(scaler.name) : undefined;
  }

  async onDecision(state: ScalerState, signal: AbortSignal): Promise<void> {
    const { scaler } = state;
    const k = `${scaler.namespace}/${scaler.name}`;
    this.#known.set(k, scaler);
    if (!this.#options.leader.isLeader()) {
      this.#inSync.delete(k);
      return;
    }
    const stamp = `${scaler.uid ?? ''}#${scaler.generation}#${scaler.spec.hpa.create}`;
    const now = (this.#options.nowMs ?? Date.now)();
    const synced = this.#inSync.get(k);
    if (synced?.stamp === stamp && now - synced.atMs < (this.#options.resyncSeconds ?? 300) * 1000) return;
    if (scaler.spec.hpa.create) await this.#ensure(scaler, signal);
    else await this.#remove(scaler.namespace, scaler.name, scaler, signal);
    this.#inSync.set(k, { stamp, atMs: now });
  }

  async onScalerRemoved(namespace: string, name: string): Promise<void> {
    const k = `${namespace}/${name}`;
    this.#inSync.delete(k);
    const scaler = this.#known.get(k);
    this.#known.delete(k);
    // The ownerReference lets the garbage collector delete it too; deleting here is faster and
    // covers HPAs created before the scaler had a uid. A controller shutting down removes every
    // scaler from its loop while the TokenScalers still exist: their HPAs must stay.
    if (this.#options.leader.isLeader() && !this.#options.exists(namespace, name))
      await this.#remove(namespace, name, scaler, AbortSignal.timeout(10_000));
  }

  async #ensure(scaler: ScalerDefinition, signal: AbortSignal): Promise<void> {
    const { api, recorder, logger } = this.#options;
    const want = desiredHpa(scaler);
    const name = want.metadata.name;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const have = await api.getHpa(scaler.namespace, name, signal);
      try {
        if (have === undefined) {
          await api.createHpa(want, signal);
          logger.info('created the HPA', { scaler: `${scaler.namespace}/${scaler.name}`, hpa: name });
          await recorder.record(
            {
              scaler,
              type: 'Normal',
              reason: 'HPACreated',
              action: 'CreateHPA',
              note: `created HorizontalPodAutoscaler ${name} on external metric ${DESIRED_REPLICAS_METRIC}`,
            },
            signal,
          );
          return;
        }
        if (!isOurs(have, scaler)) {
          await recorder.record(
            {
              scaler,
              type: 'Warning',
              reason: 'HPAConflict',
              action: 'CreateHPA',
              note: `HorizontalPodAutoscaler ${name} exists and is not managed by tokenscaler; leaving it alone`,
            },
            signal,
          );
          return;
        }
        if (sameSpec(have, want)) return;
        await api.replaceHpa(
          {
            ...have,
            metadata: {
              ...have.metadata,
              labels: want.metadata.labels,
              ownerReferences: want.metadata.ownerReferences,
            },
            spec: (want as KubeObject & { spec: unknown }).spec,
          } as KubeObject,
          signal,
        );
        await recorder.record(
          {
            scaler,
            type: 'Normal',
            reason: 'HPAUpdated',
            action: 'UpdateHPA',
            note: `updated HorizontalPodAutoscaler ${name} to match the TokenScaler`,
          },
          signal,
        );
        return;
      } catch (error) {
        if (!hasCode(error, 'KUBE_CONFLICT') && !hasCode(error, 'KUBE_ALREADY_EXISTS')) throw error;
      }
    }
  }

  async #remove(
    namespace: string,
    name: string,
    scaler: ScalerDefinition | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const { api, recorder, logger } = this.#options;
    const hpaName = hpaNameOf(name);
    const have = await api.getHpa(namespace, hpaName, signal);
    if (
      have === undefined ||
      have.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY ||
      have.metadata.labels?.[SCALER_LABEL] !== name
    )
      return;
    try {
      await api.deleteHpa(namespace, hpaName, have.metadata.uid ?? '', signal);
    } catch (error) {
      if (hasCode(error, 'KUBE_NOT_FOUND') || hasCode(error, 'KUBE_CONFLICT')) return;
      throw error;
    }
    logger.info('deleted the owned HPA', { scaler: `${namespace}/${name}`, hpa: hpaName });
    if (scaler !== undefined && scaler.spec.hpa.create === false)
      await recorder.record(
        {
          scaler,
          type: 'Normal',
          reason: 'HPADeleted',
          action: 'DeleteHPA',
          note: `deleted HorizontalPodAutoscaler ${hpaName}: spec.hpa.create is false`,
        },
        signal,
      );
  }
}

function isOurs(hpa: KubeObject, scaler: ScalerDefinition): boolean {
  if (hpa.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) return false;
  const owner = hpa.metadata.ownerReferences?.find(
    (o) => o.kind === TOKENSCALER_KIND && o.controller === true,
  );
  return owner === undefined
    ? hpa.metadata.labels?.[SCALER_LABEL] === scaler.name
    : owner.name === scaler.name;
}

function sameSpec(have: KubeObject, want: KubeObject): boolean {
  const spec = (o: KubeObject) => JSON.stringify(sortKeys((o as KubeObject & { spec?: unknown }).spec));
  // An API server without the HPAConfigurableTolerance feature drops `tolerance`: that is not a hand
  // edit to put back (it would be dropped again on every update).
  if (!spec(have).includes('"tolerance"')) want = withoutTolerance(want);
  const owners = (o: KubeObject) => JSON.stringify(o.metadata.ownerReferences ?? []);
  return spec(have) === spec(want) && owners(have) === owners(want);
}

function withoutTolerance(object: KubeObject): KubeObject {
  const copy = structuredClone(object) as KubeObject & {
    spec?: { behavior?: Record<string, { tolerance?: number } | undefined> };
  };
  for (const rules of Object.values(copy.spec?.behavior ?? {})) delete rules?.tolerance;
  return copy;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, sortKeys(v)]),
    );
  return value;
}
