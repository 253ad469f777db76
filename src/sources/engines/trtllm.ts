/**
 * @module NVIDIA TensorRT-LLM, both front ends (reference/engine-metrics.md §4); each pod is read with
 * whichever family it serves, so one fleet may mix them during a migration.
 *
 * Triton TensorRT-LLM backend (`nv_trt_llm_*`, port 8002), one gauge family per category label:
 * - `nv_trt_llm_request_metrics{request_type="active"|"scheduled"|"waiting"}`: running (active, else
 *   scheduled) and waiting requests.
 * - `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used"|"max"|"tokens_per"|"fraction"}`:
 *   KV tokens in use = used x tokens_per, capacity = max x tokens_per, usage = fraction.
 * - Histograms `nv_llm_input_token_len` / `nv_llm_output_token_len` (buckets 10..1000 only, so P95
 *   saturates at 1000 for longer requests, rule 0.4); their `_sum` rates are the token rates.
 *
 * trtllm-serve (`trtllm_*`, prometheus_client): `trtllm_num_requests_running|waiting`,
 * `trtllm_kv_cache_utilization`, `trtllm_kv_cache_used_blocks|max_blocks|tokens_per_block`, counters
 * `trtllm_prompt_tokens_total`, `trtllm_generation_tokens_total`, `trtllm_request_success_total`. It has
 * no token-length histograms: mean tokens per request come from counter ratios.
 *
 * Neither reports preemptions or an in-flight token gauge: in-flight and waiting tokens are estimated.
 */
import type { EngineProfile } from '../engine-profile.ts';
import type { SeriesRef } from '../readings.ts';
import {
  fleetMean,
  fleetMin,
  fleetSum,
  histogramMean,
  histogramPercentiles,
  ObservationBuilder,
  perPodProduct,
  ratio,
} from '../readings.ts';

const block = (type: string): SeriesRef => ({
  metric: 'nv_trt_llm_kv_cache_block_metrics',
  match: { kv_cache_block_type: type },
});
const request = (type: string): SeriesRef => ({
  metric: 'nv_trt_llm_request_metrics',
  match: { request_type: type },
});

export const trtllmProfile: EngineProfile = {
  kind: 'trtllm',
  displayName: 'TensorRT-LLM',
  supportsScrape: true,
  presence: [
    'nv_trt_llm_request_metrics',
    'nv_trt_llm_kv_cache_block_metrics',
    'trtllm_num_requests_running',
    'trtllm_kv_cache_utilization',
  ],
  readings: {
    running: {
      kind: 'gauge',
      sources: [{ metric: 'trtllm_num_requests_running' }, request('active'), request('scheduled')],
      perPod: 'sum',
    },
    waiting: {
      kind: 'gauge',
      sources: [{ metric: 'trtllm_num_requests_waiting' }, request('waiting')],
      perPod: 'sum',
    },
    kvUsage: {
      kind: 'gauge',
      sources: [{ metric: 'trtllm_kv_cache_utilization' }, block('fraction')],
      perPod: 'mean',
    },
    usedBlocks: {
      kind: 'gauge',
      sources: [{ metric: 'trtllm_kv_cache_used_blocks' }, block('used')],
      perPod: 'sum',
    },
    maxBlocks: {
      kind: 'gauge',
      sources: [{ metric: 'trtllm_kv_cache_max_blocks' }, block('max')],
      perPod: 'sum',
    },
    tokensPerBlock: {
      kind: 'gauge',
      sources: [{ metric: 'trtllm_kv_cache_tokens_per_block' }, block('tokens_per')],
      perPod: 'max',
    },
    promptTokens: {
      kind: 'rate',
      sources: [{ metric: 'trtllm_prompt_tokens_total' }, { metric: 'nv_llm_input_token_len_sum' }],
    },
    generationTokens: {
      kind: 'rate',
      sources: [{ metric: 'trtllm_generation_tokens_total' }, { metric: 'nv_llm_output_token_len_sum' }],
    },
    requests: { kind: 'rate', sources: [{ metric: 'trtllm_request_success_total' }] },
    input: { kind: 'histogram', sources: [{ metric: 'nv_llm_input_token_len' }] },
    output: { kind: 'histogram', sources: [{ metric: 'nv_llm_output_token_len' }] },
  },
  derive(r) {
    const out = new ObservationBuilder();
    const running = fleetSum(r.perPod('running'));
    const waiting = fleetSum(r.perPod('waiting'));
    const tokensPerBlock = r.perPod('tokensPerBlock');
    const input = r.histogram('input');
    const output = r.histogram('output');
    const promptRate = fleetSum(r.perPod('promptTokens'));
    const generationRate = fleetSum(r.perPod('generationTokens'));
    const requestRate = fleetSum(r.perPod('requests'));
    const meanInput = histogramMean(input) ?? ratio(promptRate, requestRate);
    const meanOutput = histogramMean(output) ?? ratio(generationRate, requestRate);
    out
      .measured('runningRequests', running)
      .measured('waitingRequests', waiting)
      .measured('engineKvUsageRatio', fleetMean(r.perPod('kvUsage')))
      .measured(
        'engineKvCapacityTokensPerReplica',
        fleetMin(perPodProduct(r.perPod('maxBlocks'), tokensPerBlock)),
      )
      .measured('promptTokensPerSecond', promptRate)
      .measured('generationTokensPerSecond', generationRate)
      .percentiles('requestInputTokens', histogramPercentiles(input))
      .percentiles('requestOutputTokens', histogramPercentiles(output))
      .requestTokenEstimates({
        runningRequests: running,
        waitingRequests: waiting,
        meanInputTokens: meanInput,
        meanOutputTokens: meanOutput,
        kvTokensInUse: fleetSum(perPodProduct(r.perPod('usedBlocks'), tokensPerBlock)),
      });
    return out.result;
  },
};
