/**
 * @module The contract of an engine profile: which metrics identify the engine, which readings it
 * takes, and how they become an Observation. One profile per file in `engines/`, registered in
 * `engines/registry.ts`. Adding an engine: write `engines/<kind>.ts` exporting an EngineProfile, add
 * a fixture-backed test beside it, add the kind to ENGINE_KINDS in config/tokenscaler-spec.ts and
 * to the registry.
 */
import type { EngineKind } from '../config/tokenscaler-spec.ts';
import type { DerivedObservation, ReadingResults, ReadingSet } from './readings.ts';

export interface EngineProfile {
  readonly kind: EngineKind;
  /** Human name for messages, e.g. "vLLM". */
  readonly displayName: string;
  /**
   * Sample names whose presence marks a pod as this engine; a pod serving none of them is reported
   * as ENGINE_METRICS_MISSING (wrong --engine, or metrics disabled, e.g. vLLM --disable-log-stats).
   * Empty for `generic`, which has no fixed metric names.
   */
  readonly presence: readonly string[];
  readonly readings: ReadingSet;
  /** Pure: per-pod readings in, fleet figures with provenance out. */
  derive(readings: ReadingResults): DerivedObservation;
  /** False when the profile only works through PromQL (generic). */
  readonly supportsScrape: boolean;
}
