/**
 * @module vLLM (v0 and v1 engines). Names, renames and label sets from reference/engine-metrics.md §1.
 *
 * - Requests: `vllm:num_requests_running` / `vllm:num_requests_waiting` (gauges; one series per
 *   data-parallel `engine`, summed per pod).
 * - KV usage (0..1 despite the name): `vllm:kv_cache_usage_perc` (>= 0.9.2), falling back to
 *   `vllm:gpu_cache_usage_perc` (v0 and v1 < 0.12) per pod, so a fleet in mid-upgrade reads both.
 * - Capacity: labels of `vllm:cache_config_info` (§1.4): `kv_cache_size_tokens` when present (right for
 *   hybrid models, where num_gpu_blocks x block_size is not), else num_gpu_blocks x block_size;
 *   `num_gpu_blocks="None"` (vLLM 0.8.1) is no data. Summed over the engines of a pod.
 * - Tokens: counters `vllm:prompt_tokens_total` and `vllm:generation_tokens_total` (exposed with
 *   `_total` in every version, rule 0.1), preemptions `vllm:num_preemptions_total`.
 * - Per-request tokens: histograms `vllm:request_prompt_tokens` and `vllm:request_generation_tokens`,
 *   observed when a request finishes (so they lag by a request's duration, §1.6).
 *
 * vLLM has no in-flight token gauge: in-flight tokens and waiting tokens are estimated (see
 * estimateInflightTokens) and marked so in the provenance.
 */

import type { EngineProfile } from '../engine-profile.ts';
import type { Labels } from '../exposition-parser.ts';
import {
  fleetMean,
  fleetMin,
  fleetSum,
  histogramMean,
  histogramPercentiles,
  ObservationBuilder,
  perPodProduct,
} from '../readings.ts';

/** Capacity in tokens of one vLLM engine from its cache_config_info labels; undefined when not reported. */
export function vllmEngineCapacityTokens(labels: Labels): number | undefined {
  const direct = positiveInteger(labels.kv_cache_size_tokens);
  if (direct !== undefined) return direct;
  const blocks = positiveInteger(labels.num_gpu_blocks);
  const blockSize = positiveInteger(labels.block_size);
  return blocks === undefined || blockSize === undefined ? undefined : blocks * blockSize;
}

function positiveInteger(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  const value = Number(raw);
  return value > 0 && Number.isSafeInteger(value) ? value : undefined;
}

/** Per pod: the sum over its engines (data-parallel ranks each hold their own KV cache). */
export function capacityPerPod(
  info: ReadonlyMap<string, readonly Labels[]>,
  capacityOf: (labels: Labels) => number | undefined,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const [pod, labelSets] of info) {
    let total = 0;
    let known = false;
    for (const labels of labelSets) {
      const tokens = capacityOf(labels);
      if (tokens !== undefined) {
        total += tokens;
        known = true;
      }
    }
    if (known) out.set(pod, total);
  }
  return out;
}

export const vllmProfile: EngineProfile = {
  kind: 'vllm',
  displayName: 'vLLM',
  supportsScrape: true,
  presence: [
    'vllm:num_requests_running',
    'vllm:num_requests_waiting',
    'vllm:kv_cache_usage_perc',
    'vllm:gpu_cache_usage_perc',
  ],
  readings: {
    running: { kind: 'gauge', sources: [{ metric: 'vllm:num_requests_running' }], perPod: 'sum' },
    waiting: { kind: 'gauge', sources: [{ metric: 'vllm:num_requests_waiting' }], perPod: 'sum' },
    kvUsage: {
      kind: 'gauge',
      sources: [{ metric: 'vllm:kv_cache_usage_perc' }, { metric: 'vllm:gpu_cache_usage_perc' }],
      perPod: 'mean',
    },
    cacheConfig: { kind: 'info', source: { metric: 'vllm:cache_config_info' } },
    promptTokens: { kind: 'rate', sources: [{ metric: 'vllm:prompt_tokens_total' }] },
    generationTokens: { kind: 'rate', sources: [{ metric: 'vllm:generation_tokens_total' }] },
    preemptions: { kind: 'rate', sources: [{ metric: 'vllm:num_preemptions_total' }] },
    input: { kind: 'histogram', sources: [{ metric: 'vllm:request_prompt_tokens' }] },
    output: { kind: 'histogram', sources: [{ metric: 'vllm:request_generation_tokens' }] },
  },
  derive(r) {
    const out = new ObservationBuilder();
    const running = fleetSum(r.perPod('running'));
    const waiting = fleetSum(r.perPod('waiting'));
    const capacity = capacityPerPod(r.info('cacheConfig'), vllmEngineCapacityTokens);
    const usage = r.perPod('kvUsage');
    const input = r.histogram('input');
    const output = r.histogram('output');
    const meanInput = histogramMean(input);
    const meanOutput = histogramMean(output);
    out
      .measured('runningRequests', running)
      .measured('waitingRequests', waiting)
      .measured('engineKvUsageRatio', fleetMean(usage))
      .measured('engineKvCapacityTokensPerReplica', fleetMin(capacity))
      .measured('promptTokensPerSecond', fleetSum(r.perPod('promptTokens')))
      .measured('generationTokensPerSecond', fleetSum(r.perPod('generationTokens')))
      .measured('preemptionsPerSecond', fleetSum(r.perPod('preemptions')))
      .percentiles('requestInputTokens', histogramPercentiles(input))
      .percentiles('requestOutputTokens', histogramPercentiles(output))
      .requestTokenEstimates({
        runningRequests: running,
        waitingRequests: waiting,
        meanInputTokens: meanInput,
        meanOutputTokens: meanOutput,
        kvTokensInUse: fleetSum(perPodProduct(usage, capacity)),
      });
    return out.result;
  },
};
