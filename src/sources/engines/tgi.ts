/**
 * @module Hugging Face TGI. Names from reference/engine-metrics.md §3 (TGI @db931fc): Rust
 * metrics-exporter-prometheus, so no `_total` suffixes, and most metrics carry no labels.
 *
 * - `tgi_batch_current_max_tokens`: "maximum number of tokens this batch will grow to" = reserved
 *   input + max_new_tokens of the running batch. That is in-flight tokens projected to completion
 *   (an upper bound: requests may stop before max_new_tokens), so it is reported as measured.
 * - `tgi_batch_max_total_tokens`: token capacity (`max_batch_total_tokens`, set after warmup).
 * - KV usage: reservation / capacity per pod (reservation-based, not real KV pages): estimated.
 * - Requests: `tgi_batch_current_size` running, `tgi_queue_size` waiting.
 * - Histograms `tgi_request_input_length` (observed at admission) and `tgi_request_generated_tokens`
 *   (at completion); their `_sum` rates are the prompt and generation token rates, which is what the
 *   official TGI dashboard plots. TGI has no preemption metric.
 */
import type { EngineProfile } from '../engine-profile.ts';
import {
  fleetMean,
  fleetMin,
  fleetSum,
  histogramMean,
  histogramPercentiles,
  ObservationBuilder,
  perPodRatio,
  requestTokens,
} from '../readings.ts';

export const tgiProfile: EngineProfile = {
  kind: 'tgi',
  displayName: 'TGI',
  supportsScrape: true,
  presence: ['tgi_queue_size', 'tgi_batch_current_size', 'tgi_batch_current_max_tokens', 'tgi_request_count'],
  readings: {
    running: { kind: 'gauge', sources: [{ metric: 'tgi_batch_current_size' }], perPod: 'sum' },
    waiting: { kind: 'gauge', sources: [{ metric: 'tgi_queue_size' }], perPod: 'sum' },
    reservedTokens: { kind: 'gauge', sources: [{ metric: 'tgi_batch_current_max_tokens' }], perPod: 'sum' },
    capacity: { kind: 'gauge', sources: [{ metric: 'tgi_batch_max_total_tokens' }], perPod: 'max' },
    input: { kind: 'histogram', sources: [{ metric: 'tgi_request_input_length' }] },
    output: { kind: 'histogram', sources: [{ metric: 'tgi_request_generated_tokens' }] },
  },
  derive(r) {
    const out = new ObservationBuilder();
    const reserved = r.perPod('reservedTokens');
    const capacity = r.perPod('capacity');
    const waiting = fleetSum(r.perPod('waiting'));
    const input = r.histogram('input');
    const output = r.histogram('output');
    out
      .measured('inflightTokens', fleetSum(reserved))
      .measured('runningRequests', fleetSum(r.perPod('running')))
      .measured('waitingRequests', waiting)
      .measured('engineKvCapacityTokensPerReplica', fleetMin(capacity))
      .estimated('engineKvUsageRatio', fleetMean(perPodRatio(reserved, capacity)))
      .measured('promptTokensPerSecond', input?.sumPerSecond)
      .measured('generationTokensPerSecond', output?.sumPerSecond)
      .percentiles('requestInputTokens', histogramPercentiles(input))
      .percentiles('requestOutputTokens', histogramPercentiles(output))
      .estimated('waitingTokens', requestTokens(waiting, histogramMean(input)));
    return out.result;
  },
};
