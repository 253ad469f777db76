import type { HpaBehavior } from './hpa.ts';

/**
 * `behavior` of the HPA tokenscaler creates for a scaler (spec.hpa.create); src/kube builds the
 * object from it and src/sim emulates the same HPA.
 *
 * - scaleUp: the Kubernetes default (no stabilization; the larger of +100% or +4 pods per 15 s), so a
 *   burst the scaler already decided on is not slowed further.
 * - scaleDown: no stabilization window and up to 100% per 15 s, because the scaler stabilizes
 *   scale-down itself (spec.behavior.scaleDownStabilizationSeconds, plus no scale-down in the first
 *   window after a restart); the HPA's default 300 s window on top would double the delay.
 * - tolerance 0 both ways (KEP-4951, beta and on by default from Kubernetes 1.35): the metric is the
 *   decision itself (AverageValue 1), so the HPA's ratio is desired / current, and the default 10%
 *   band would ignore "one more replica" from 10 replicas up (bench/autoscaling.md measured the fleet
 *   freezing at 13). API servers without the feature drop the field and keep the 10% band.
 */
export const OWNED_HPA_BEHAVIOR: HpaBehavior = {
  scaleUp: {
    stabilizationWindowSeconds: 0,
    selectPolicy: 'Max',
    policies: [
      { type: 'Percent', value: 100, periodSeconds: 15 },
      { type: 'Pods', value: 4, periodSeconds: 15 },
    ],
    tolerance: 0,
  },
  scaleDown: {
    stabilizationWindowSeconds: 0,
    selectPolicy: 'Max',
    policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }],
    tolerance: 0,
  },
};
