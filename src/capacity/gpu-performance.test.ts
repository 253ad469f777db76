import { describe, expect, it } from 'vitest';
import { architectureFromHfConfig } from './architecture.ts';
import { activeParameters, findGpuPerformance, gpuPerformanceIds } from './gpu-performance.ts';
import { findGpuPreset, gpuPresetIds, requireModelPreset } from './presets.ts';

describe('GPU roofline figures', () => {
  it.each([
    // id, dense BF16 TFLOP/s (datasheet "with sparsity" / 2), HBM GB/s from kv-presets.json
    ['h100-80gb', 989, 3350],
    ['h100', 989, 3350],
    ['h100-80gb-pcie', 756, 2000],
    ['h200-141gb', 989, 4800],
    ['a100-80gb', 312, 2039],
    ['a100-40gb', 312, 1555],
    ['l4', 121, 300],
    ['l40s', 362.05, 864],
    ['b200', 2250, 7700],
    ['gb200', 2500, 8000],
    ['mi300x', 1307.4, 5300],
    ['tpu-v5e', 197, 819],
  ])('%s: %d TFLOP/s dense, %d GB/s', (id, tflops, bandwidth) => {
    const performance = findGpuPerformance(id);
    expect(performance?.peakDenseBf16Tflops).toBe(tflops);
    expect(performance?.hbmBandwidthGBps).toBe(bandwidth);
    expect(performance?.id).toBe(findGpuPreset(id)?.id);
  });

  it('covers every GPU preset, each figure with a source', () => {
    expect(gpuPerformanceIds()).toEqual([...gpuPresetIds()].sort());
    for (const id of gpuPerformanceIds()) {
      const performance = findGpuPerformance(id);
      expect(performance?.sources.length, id).toBeGreaterThan(0);
      // Dense figures: no preset claims more than the densest part (GB200) does.
      expect(performance?.peakDenseBf16Tflops, id).toBeLessThanOrEqual(2500);
    }
  });

  it('marks the A10G figure as an assumption', () => {
    expect(findGpuPerformance('a10g')?.unconfirmed).toMatch(/A10G/);
    expect(findGpuPerformance('h100-80gb')?.unconfirmed).toBeUndefined();
  });

  it('has nothing for an unknown preset', () => {
    expect(findGpuPerformance('voodoo-3dfx')).toBeUndefined();
  });
});

describe('active parameters', () => {
  it.each([
    ['llama-3.1-70b', 70.55e9, 'reference-active'],
    ['deepseek-v3', 37.55e9, 'reference-active'],
    ['mixtral-8x7b', 12.88e9, 'reference-active'],
    ['gpt-oss-120b', 5.71e9, 'reference-active'],
    ['jamba-v0.1', 12e9, 'reference-active'],
    ['qwen3-next-80b-a3b', 3e9, 'reference-active'],
  ])('%s: %d', (id, count, basis) => {
    const active = activeParameters(requireModelPreset(id));
    expect(active?.count).toBeCloseTo(count, -6);
    expect(active?.basis).toBe(basis);
  });

  it('falls back to all parameters for a config.json, and to nothing without a count', () => {
    const dense = architectureFromHfConfig(
      {
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        hidden_size: 256,
        intermediate_size: 512,
        vocab_size: 1000,
      },
      'tiny.json',
    );
    expect(activeParameters(dense)?.basis).toBe('total-parameters');
    expect(activeParameters(dense)?.count).toBe(dense.parameterCount);
    const unknown = architectureFromHfConfig(
      { num_hidden_layers: 2, num_attention_heads: 4, head_dim: 64 },
      'partial.json',
    );
    expect(activeParameters(unknown)).toBeUndefined();
  });
});
