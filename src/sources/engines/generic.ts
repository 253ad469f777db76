/**
 * @module `generic`: any engine or gateway, through PromQL the user writes per signal
 * (`spec.metrics.prometheus.queries`, or `--query SIGNAL=PROMQL` on `tokenscaler observe`). Each query
 * must return one number (a scalar, or a vector of one series: aggregate with sum(...)). Every figure
 * it yields is reported as measured. It has no fixed metric names, so it cannot scrape pods directly.
 */
import type { EngineProfile } from '../engine-profile.ts';

export const genericProfile: EngineProfile = {
  kind: 'generic',
  displayName: 'generic (user PromQL)',
  supportsScrape: false,
  presence: [],
  readings: {},
  derive: () => ({ provenance: {} }),
};
