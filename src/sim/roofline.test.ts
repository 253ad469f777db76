import { describe, expect, it } from 'vitest';
import { activeParameters, findGpuPerformance } from '../capacity/gpu-performance.ts';
import { computeCapacity } from '../capacity/kv-model.ts';
import { requireGpuPreset, requireModelPreset } from '../capacity/presets.ts';
import { StepTimeModel } from './roofline.ts';

function llama70bOnH100(overheadSeconds = 0.004): StepTimeModel {
  const model = requireModelPreset('llama-3.1-70b');
  const gpu = requireGpuPreset('h100-80gb');
  const performance = findGpuPerformance('h100-80gb');
  const capacity = computeCapacity({
    model,
    gpuMemoryGiB: gpu.memoryGiB,
    tensorParallel: 4,
    pipelineParallel: 1,
    kvCacheDtype: 'auto',
    reservedGiB: 2,
    gpuMemoryUtilization: 0.9,
    blockSize: 16,
  });
  return new StepTimeModel({
    model,
    capacity,
    activeParameters: activeParameters(model)?.count as number,
    peakTflopsPerGpu: performance?.peakDenseBf16Tflops as number,
    hbmBandwidthGBpsPerGpu: performance?.hbmBandwidthGBps as number,
    computeEfficiency: 0.6,
    memoryEfficiency: 0.8,
    stepOverheadSeconds: overheadSeconds,
  });
}

describe('StepTimeModel (the worked examples of roofline.ts)', () => {
  const m = llama70bOnH100();

  it('makes a 128-sequence decode step memory-bound at about 25 ms', () => {
    // Weights 35.3 GB per GPU + 256,000 cached tokens x 80 KiB, at 2,680 GB/s: 21.0 ms + 4 ms.
    expect(m.decodeStepSeconds(128, 2000)).toBeCloseTo(0.025, 3);
    const compute = (m.flopsPerToken * 128 + m.attentionFlopsPerPair * 128 * 2000) / m.computeRate;
    const memory = (m.weightsBytesPerGpu + m.kvBytesPerTokenPerGpu * 128 * 2000) / m.memoryRatePerGpu;
    expect(memory).toBeGreaterThan(compute);
  });

  it('makes an 8,192-token prefill chunk compute-bound near 16,000 tokens/s', () => {
    const rate = m.prefillTokensPerSecond(8192, 8192);
    expect(rate).toBeGreaterThan(15_000);
    expect(rate).toBeLessThan(17_000);
    // Short prompts packed into a full chunk attend to less and run a little faster.
    expect(m.packedPrefillTokensPerSecond(8192, 1000)).toBeGreaterThan(rate);
    // A long prompt spans several chunks at the same per-chunk cost model.
    expect(m.packedPrefillTokensPerSecond(8192, 20_000)).toBe(m.prefillTokensPerSecond(8192, 20_000));
  });

  it('charges the overhead on every step and grows with the batch', () => {
    expect(llama70bOnH100(0).decodeStepSeconds(1, 100) + 0.004).toBeCloseTo(m.decodeStepSeconds(1, 100), 12);
    expect(m.decodeStepSeconds(256, 2000)).toBeGreaterThan(m.decodeStepSeconds(128, 2000));
  });

  it('counts MLA attention against the latent, not head_dim', () => {
    const model = requireModelPreset('deepseek-v3');
    const capacity = computeCapacity({
      model,
      gpuMemoryGiB: 139.8,
      tensorParallel: 8,
      pipelineParallel: 1,
      kvCacheDtype: 'auto',
      reservedGiB: 2,
      gpuMemoryUtilization: 0.9,
      blockSize: 64,
    });
    const mla = new StepTimeModel({
      model,
      capacity,
      activeParameters: 37.55e9,
      peakTflopsPerGpu: 989,
      hbmBandwidthGBpsPerGpu: 4800,
      computeEfficiency: 0.6,
      memoryEfficiency: 0.8,
      stepOverheadSeconds: 0,
    });
    // 2 x 128 heads x ((512 + 64) + 512) x 61 layers.
    expect(mla.attentionFlopsPerPair).toBe(2 * 128 * (576 + 512) * 61);
  });
});
