/**
 * @module SGLang (`--enable-metrics`). Names from reference/engine-metrics.md §2.
 *
 * - Requests: `sglang:num_running_reqs`, `sglang:num_queue_reqs`.
 * - KV: `sglang:num_used_tokens` (tokens in the KV pool now; radix-cache evictable tokens count as
 *   free), `sglang:max_total_num_tokens` (pool capacity, newer builds), `sglang:token_usage` (0..1).
 *   Capacity falls back to `sglang:cache_config_info` page_size x num_pages (listed by the GIE
 *   protocol, unverified in SGLang itself, §8), then to num_used_tokens / token_usage (estimated).
 * - Scheduler gauges carry `tp_rank`, `pp_rank`, `moe_ep_rank`: with
 *   `--enable-metrics-for-all-schedulers` every rank repeats the figure of the shared pool, so the
 *   maximum over those labels is taken before adding data-parallel ranks (`dp_rank`) and pods.
 * - Tokens: counters `sglang:prompt_tokens_total`, `sglang:generation_tokens_total`; requests
 *   `sglang:num_requests_total`; retractions (SGLang's preemptions) `sglang:num_retracted_requests_total`.
 * - Per-request tokens: `sglang:prompt_tokens_histogram` / `sglang:generation_tokens_histogram`, only
 *   with `--collect-tokens-histogram`; without them mean tokens per request come from the counters.
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
  perPodRatio,
  ratio,
} from '../readings.ts';
import { capacityPerPod } from './vllm.ts';

const RANKS = ['tp_rank', 'pp_rank', 'moe_ep_rank'] as const;

function sglangPageCapacity(labels: Labels): number | undefined {
  const pages = Number(labels.num_pages);
  const pageSize = Number(labels.page_size);
  return Number.isSafeInteger(pages) && pages > 0 && Number.isSafeInteger(pageSize) && pageSize > 0
    ? pages * pageSize
    : undefined;
}

export const sglangProfile: EngineProfile = {
  kind: 'sglang',
  displayName: 'SGLang',
  supportsScrape: true,
  presence: [
    'sglang:num_running_reqs',
    'sglang:num_queue_reqs',
    'sglang:num_used_tokens',
    'sglang:token_usage',
  ],
  readings: {
    running: {
      kind: 'gauge',
      sources: [{ metric: 'sglang:num_running_reqs' }],
      perPod: 'sum',
      collapse: RANKS,
    },
    waiting: {
      kind: 'gauge',
      sources: [{ metric: 'sglang:num_queue_reqs' }],
      perPod: 'sum',
      collapse: RANKS,
    },
    usedTokens: {
      kind: 'gauge',
      sources: [{ metric: 'sglang:num_used_tokens' }],
      perPod: 'sum',
      collapse: RANKS,
    },
    capacity: {
      kind: 'gauge',
      sources: [{ metric: 'sglang:max_total_num_tokens' }],
      perPod: 'sum',
      collapse: RANKS,
    },
    kvUsage: { kind: 'gauge', sources: [{ metric: 'sglang:token_usage' }], perPod: 'mean', collapse: RANKS },
    cacheConfig: { kind: 'info', source: { metric: 'sglang:cache_config_info' } },
    promptTokens: { kind: 'rate', sources: [{ metric: 'sglang:prompt_tokens_total' }] },
    generationTokens: { kind: 'rate', sources: [{ metric: 'sglang:generation_tokens_total' }] },
    requests: { kind: 'rate', sources: [{ metric: 'sglang:num_requests_total' }] },
    retractions: { kind: 'rate', sources: [{ metric: 'sglang:num_retracted_requests_total' }] },
    input: { kind: 'histogram', sources: [{ metric: 'sglang:prompt_tokens_histogram' }] },
    output: { kind: 'histogram', sources: [{ metric: 'sglang:generation_tokens_histogram' }] },
  },
  derive(r) {
    const out = new ObservationBuilder();
    const running = fleetSum(r.perPod('running'));
    const waiting = fleetSum(r.perPod('waiting'));
    const used = r.perPod('usedTokens');
    const usage = r.perPod('kvUsage');
    const input = r.histogram('input');
    const output = r.histogram('output');
    const promptRate = fleetSum(r.perPod('promptTokens'));
    const generationRate = fleetSum(r.perPod('generationTokens'));
    const requestRate = fleetSum(r.perPod('requests'));
    const meanInput = histogramMean(input) ?? ratio(promptRate, requestRate);
    const meanOutput = histogramMean(output) ?? ratio(generationRate, requestRate);

    const reported = r.perPod('capacity');
    const fromPages = capacityPerPod(r.info('cacheConfig'), sglangPageCapacity);
    if (reported.size > 0) out.measured('engineKvCapacityTokensPerReplica', fleetMin(reported));
    else if (fromPages.size > 0) out.measured('engineKvCapacityTokensPerReplica', fleetMin(fromPages));
    else out.estimated('engineKvCapacityTokensPerReplica', fleetMin(perPodRatio(used, usage)));

    out
      .measured('runningRequests', running)
      .measured('waitingRequests', waiting)
      .measured('engineKvUsageRatio', fleetMean(usage))
      .measured('promptTokensPerSecond', promptRate)
      .measured('generationTokensPerSecond', generationRate)
      .measured('preemptionsPerSecond', fleetSum(r.perPod('retractions')))
      .percentiles('requestInputTokens', histogramPercentiles(input))
      .percentiles('requestOutputTokens', histogramPercentiles(output))
      .requestTokenEstimates({
        runningRequests: running,
        waitingRequests: waiting,
        meanInputTokens: meanInput,
        meanOutputTokens: meanOutput,
        kvTokensInUse: fleetSum(used),
      });
    return out.result;
  },
};
