import { describe, expect, it } from 'vitest';
import { findGpuPerformance } from '../capacity/gpu-performance.ts';
import { requireGpuPreset, requireModelPreset } from '../capacity/presets.ts';
import { renderHtml, renderSvg } from './plot.ts';
import { POLICY_NAMES, TOKENSCALER_HPA_BEHAVIOR } from './policies.ts';
import { runScenario, type ScenarioOutput } from './scenario.ts';
import type { Trace } from './trace.ts';

/** Ten minutes of a small model under a load step, every policy at its default threshold. */
function smallScenario(name = 'step<load>'): ScenarioOutput {
  const model = requireModelPreset('llama-3.1-8b');
  const gpu = requireGpuPreset('l4');
  const performance = findGpuPerformance('l4');
  const requests = [];
  for (let t = 0; t < 600; t += t < 200 || t > 400 ? 2 : 0.25) {
    requests.push({ arrivalSeconds: t, inputTokens: 800, outputTokens: 120 });
  }
  const trace: Trace = { name, requests, description: `${name}: synthetic load step`, notes: [] };
  return runScenario({
    trace,
    loadMultiplier: 1,
    loadMethod: 'overlay',
    seed: 1,
    model,
    gpuLabel: gpu.id,
    capacityInput: {
      model,
      gpuMemoryGiB: gpu.memoryGiB,
      tensorParallel: 1,
      pipelineParallel: 1,
      kvCacheDtype: 'auto',
      reservedGiB: 2,
      gpuMemoryUtilization: 0.9,
      blockSize: 16,
    },
    peakDenseTflopsPerGpu: performance?.peakDenseBf16Tflops as number,
    hbmBandwidthGBpsPerGpu: performance?.hbmBandwidthGBps as number,
    computeEfficiency: 0.6,
    memoryEfficiency: 0.8,
    stepOverheadSeconds: 0.004,
    coldStartSeconds: 60,
    drainGraceSeconds: 300,
    scrapeIntervalSeconds: 5,
    hpaSyncSeconds: 15,
    minReplicas: 1,
    maxReplicas: 16,
    slo: { ttftSeconds: 2, tpotSeconds: 0.2, goal: 0.99 },
    gpuHourCostUsd: 1,
    policies: POLICY_NAMES,
    tokenscaler: {
      controllerIntervalSeconds: 5,
      rateWindowSeconds: 120,
      hpaBehavior: TOKENSCALER_HPA_BEHAVIOR,
    },
    peers: {},
    peerTuning: 'defaults',
    oracleUtilization: 0.7,
  });
}

describe('renderSvg', () => {
  const { report, result } = smallScenario();
  const svg = renderSvg(report, result.runs, result.demand);

  it('draws one panel per policy, the legend and the table', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const name of POLICY_NAMES) {
      // Panel title and table row.
      expect(svg.match(new RegExp(`>${name}<`, 'g'))?.length, name).toBeGreaterThanOrEqual(2);
    }
    expect(svg).toContain('demand: replicas the load needs at 100%');
    expect(svg).toContain('ready replicas');
    expect(svg).toContain('Cost and SLO');
    // Three series per panel: provisioned and demand areas, the ready line.
    expect(svg.match(/<polygon /g)?.length).toBe(2 * POLICY_NAMES.length);
    expect(svg.match(/<polyline /g)?.length).toBe(POLICY_NAMES.length);
  });

  it('escapes text and keeps every coordinate finite', () => {
    expect(svg).toContain('step&lt;load&gt;');
    expect(svg).not.toContain('step<load>');
    expect(svg).not.toMatch(/NaN|Infinity|undefined/);
    // Every element that opens is closed.
    const opened = (svg.match(/<(text|svg)\b/g) ?? []).length;
    const closed = (svg.match(/<\/(text|svg)>/g) ?? []).length;
    expect(opened).toBe(closed);
  });

  it('wraps the same picture in a page with the full table', () => {
    const html = renderHtml(report, result.runs, result.demand);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain(svg.trim());
    expect(html.match(/<tr>/g)?.length).toBe(POLICY_NAMES.length + 1);
    expect(html).toContain('TTFT p95');
  });
});
