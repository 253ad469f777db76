/**
 * @module The tokenscaler gateway (src/gateway/), a token-metering proxy in front of any engine. Metric
 * names are fixed by DESIGN.md "Gateway metrics"; every series carries a `model` label.
 *
 * The gateway counts tokens itself, so in-flight tokens (prompt + expected output of requests in
 * flight) and waiting tokens (prompt tokens of requests without a first token) are measured. It does
 * not see the engine's KV cache or queue: KV usage, capacity and preemptions stay unmeasured, and
 * running requests are the requests in flight through the gateway (queued at the engine or not).
 */
import type { EngineProfile } from '../engine-profile.ts';
import { fleetSum, histogramPercentiles, ObservationBuilder } from '../readings.ts';

export const tokenscalerGatewayProfile: EngineProfile = {
  kind: 'tokenscaler-gateway',
  displayName: 'tokenscaler gateway',
  supportsScrape: true,
  presence: [
    'tokenscaler_gateway_inflight_tokens',
    'tokenscaler_gateway_inflight_requests',
    'tokenscaler_gateway_waiting_tokens',
  ],
  readings: {
    inflightTokens: {
      kind: 'gauge',
      sources: [{ metric: 'tokenscaler_gateway_inflight_tokens' }],
      perPod: 'sum',
    },
    waitingTokens: {
      kind: 'gauge',
      sources: [{ metric: 'tokenscaler_gateway_waiting_tokens' }],
      perPod: 'sum',
    },
    inflightRequests: {
      kind: 'gauge',
      sources: [{ metric: 'tokenscaler_gateway_inflight_requests' }],
      perPod: 'sum',
    },
    promptTokens: {
      kind: 'rate',
      sources: [{ metric: 'tokenscaler_gateway_tokens_total', match: { type: 'input' } }],
    },
    generationTokens: {
      kind: 'rate',
      sources: [{ metric: 'tokenscaler_gateway_tokens_total', match: { type: 'output' } }],
    },
    input: { kind: 'histogram', sources: [{ metric: 'tokenscaler_gateway_request_input_tokens' }] },
    output: { kind: 'histogram', sources: [{ metric: 'tokenscaler_gateway_request_output_tokens' }] },
  },
  derive(r) {
    const input = r.histogram('input');
    const output = r.histogram('output');
    return new ObservationBuilder()
      .measured('inflightTokens', fleetSum(r.perPod('inflightTokens')))
      .measured('waitingTokens', fleetSum(r.perPod('waitingTokens')))
      .measured('runningRequests', fleetSum(r.perPod('inflightRequests')))
      .measured('promptTokensPerSecond', fleetSum(r.perPod('promptTokens')) ?? input?.sumPerSecond)
      .measured('generationTokensPerSecond', fleetSum(r.perPod('generationTokens')) ?? output?.sumPerSecond)
      .percentiles('requestInputTokens', histogramPercentiles(input))
      .percentiles('requestOutputTokens', histogramPercentiles(output)).result;
  },
};
