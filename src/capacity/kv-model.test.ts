import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { architectureFromHfConfig } from './architecture.ts';
import {
  type CapacityInput,
  computeCapacity,
  GIB,
  kvBytesPerTokenUnsharded,
  pipelineSplit,
  replicaCapacityInput,
  tokensFromBudget,
} from './kv-model.ts';
import { findGpuPreset, gpuPresetIds, modelPresetIds, requireModelPreset } from './presets.ts';

const base = (modelId: string, overrides: Partial<CapacityInput> = {}): CapacityInput =>
  replicaCapacityInput(requireModelPreset(modelId), 79.2, overrides);

describe('bytes per token (kv-cache-model.md section 3 table)', () => {
  it.each([
    ['llama-3.1-8b', 131_072],
    ['llama-3.1-70b', 327_680],
    ['llama-3.1-405b', 516_096],
    ['llama-3.2-1b', 32_768],
    ['mixtral-8x7b', 131_072],
    ['mixtral-8x22b', 229_376],
    ['qwen3-32b', 262_144],
    ['qwen3-235b-a22b', 192_512],
    ['qwen2.5-7b', 57_344],
    ['deepseek-v3', 70_272],
    ['gemma-2-9b', 344_064],
    ['gemma-3-27b', 507_904],
    ['gpt-oss-120b', 73_728],
    ['phi-3-mini-4k', 393_216],
    ['jamba-v0.1', 16_384],
    ['qwen3-next-80b-a3b', 24_576],
  ])('%s bf16 = %d B/token (all attention layers, TP=1)', (id, bytes) => {
    expect(kvBytesPerTokenUnsharded(requireModelPreset(id), 'auto')).toBe(bytes);
  });

  it('agrees with every preset row of kv-presets.json, bf16 and fp8', () => {
    for (const id of modelPresetIds()) {
      const model = requireModelPreset(id);
      expect(kvBytesPerTokenUnsharded(model, 'fp8') * 2).toBe(kvBytesPerTokenUnsharded(model, 'bf16'));
    }
  });

  it('DeepSeek-V3 MLA: 61 x (512 + 64) x 2 = 70,272 B at any TP; fp8 35,136 B', () => {
    for (const tp of [1, 2, 4, 8]) {
      const c = computeCapacity(
        base('deepseek-v3', { tensorParallel: tp, gpuMemoryGiB: 139.8, weightsGiB: 600 }),
      );
      expect(c.kvBytesPerTokenPerGpu).toBe(70_272);
      expect(c.kvBytesPerToken).toBe(70_272 * tp);
    }
    expect(
      computeCapacity(base('deepseek-v3', { kvCacheDtype: 'fp8', weightsGiB: 1 })).kvBytesPerTokenPerGpu,
    ).toBe(35_136);
  });

  it('replicates KV heads when TP exceeds them: Qwen3-235B 4 heads, TP4 and TP8 both 1 head = 48,128 B/GPU', () => {
    const tp4 = computeCapacity(base('qwen3-235b-a22b', { tensorParallel: 4, weightsGiB: 1 }));
    const tp8 = computeCapacity(base('qwen3-235b-a22b', { tensorParallel: 8, weightsGiB: 1 }));
    expect(tp4.kvHeadsPerGpu).toBe(1);
    expect(tp8.kvHeadsPerGpu).toBe(1);
    expect(tp4.kvBytesPerTokenPerGpu).toBe(48_128);
    expect(tp8.kvBytesPerTokenPerGpu).toBe(48_128);
    // Across the replica the replicated head is counted on every GPU.
    expect(tp8.kvBytesPerToken).toBe(48_128 * 8);
    expect(tp8.notes.join(' ')).toMatch(/replicated/);
  });

  it('Llama-3.1-70B TP4 holds 2 heads per GPU = 80 KiB/token/GPU', () => {
    const c = computeCapacity(base('llama-3.1-70b', { tensorParallel: 4 }));
    expect(c.kvBytesPerTokenPerGpu).toBe(81_920);
    expect(c.kvBytesPerToken).toBe(327_680);
  });
});

describe('worked examples and vLLM log cross-checks (kv-cache-model.md section 5)', () => {
  it('5.1 Llama-3.1-8B on 1xH100 at 0.9: 27,898 blocks = 446,368 tokens, 54x at 8K', () => {
    const c = computeCapacity(
      base('llama-3.1-8b', { weightsGiB: 14.99, reservedGiB: 1.8, contextTokens: 8192 }),
    );
    expect(c.tokensPerReplica).toBe(446_368);
    expect(c.maxConcurrentSequences).toBe(54);
  });

  it('5.1 with fp8 KV: 892,752 tokens', () => {
    const c = computeCapacity(
      base('llama-3.1-8b', { weightsGiB: 14.99, reservedGiB: 1.8, kvCacheDtype: 'fp8' }),
    );
    expect(c.tokensPerReplica).toBe(892_752);
  });

  it('5.2 Llama-3.1-70B on 4xH100 TP4 from 70.55B parameters: 29,022 blocks = 464,352 tokens', () => {
    const c = computeCapacity(
      base('llama-3.1-70b', { tensorParallel: 4, reservedGiB: 3, contextTokens: 8192 }),
    );
    expect(c.weightsBytesPerGpu).toBe(35_275_000_000); // 70.55e9 x 2 B / 4
    expect(c.tokensPerReplica).toBe(464_352);
    expect(c.maxConcurrentSequences).toBe(56);
  });

  it.each([
    // "Available KV cache memory: 19.28 GiB / GPU KV cache size: 157,936 tokens"
    [19.28, 157_936],
    // "Available KV cache memory: 26.43 GiB / GPU KV cache size: 216,512 tokens"
    [26.43, 216_512],
  ])('Llama-3.1-8B log: %d GiB of KV -> %d tokens', (budgetGiB, tokens) => {
    expect(tokensFromBudget(Math.floor(budgetGiB * GIB), 131_072, 16)).toBe(tokens);
  });

  it('SGLang log for Qwen3-235B-FP8 TP4: 367,404 tokens x 94 layers x 1 head x 128 x 2 B = 8.234 GiB of K', () => {
    const c = computeCapacity(base('qwen3-235b-a22b', { tensorParallel: 4, weightsGiB: 1 }));
    const kBytes = 367_404 * (c.kvBytesPerTokenPerGpu / 2);
    expect(kBytes / GIB).toBeCloseTo(8.234, 3);
  });
});

describe('sliding-window, hybrid and pipeline models', () => {
  it('gpt-oss-120b at 8K: sliding layers hold 128 tokens, so a token costs about the full layers only', () => {
    const c = computeCapacity(base('gpt-oss-120b', { contextTokens: 8192 }));
    // 18 full layers x 2,048 B + 18 sliding x 2,048 x 128/8192 = 36,864 + 576 = 37,440 B.
    expect(c.kvBytesPerTokenPerGpu).toBe(37_440);
    expect(c.contextDependent).toBe(true);
    expect(c.contextTokens).toBe(8192);
  });

  it('computes at the model context and says so when --context is missing', () => {
    const c = computeCapacity(base('gemma-2-9b', { weightsGiB: 17 }));
    expect(c.contextTokens).toBe(8192);
    expect(c.notes.join(' ')).toMatch(/computed at context 8192/);
  });

  it('longer contexts make a sliding model cheaper per token but never cheaper than its full layers', () => {
    const at = (ctx: number) =>
      computeCapacity(base('gemma-3-27b', { contextTokens: ctx })).kvBytesPerTokenPerGpu;
    expect(at(1024)).toBe(507_904);
    expect(at(32_768)).toBeLessThan(at(4096));
    expect(at(131_072)).toBeGreaterThan(10 * 8192);
  });

  it('Jamba adds a fixed state per sequence: fewer sequences fit than KV tokens alone allow', () => {
    const c = computeCapacity(
      base('jamba-v0.1', { weightsGiB: 95, contextTokens: 4096, gpuMemoryGiB: 139.8 }),
    );
    const kvOnly = Math.floor(c.kvBudgetBytesPerGpu / (4096 * 16_384));
    expect(c.maxConcurrentSequences).toBeLessThan(kvOnly);
    expect(c.maxConcurrentSequences).toBeGreaterThan(0);
  });

  it('splits layers as vLLM does and takes the minimum over stages', () => {
    expect(pipelineSplit(61, 4)).toEqual([15, 15, 16, 15]);
    expect(pipelineSplit(80, 3)).toEqual([27, 27, 26]);
    const c = computeCapacity(base('llama-3.1-70b', { tensorParallel: 4, pipelineParallel: 3 }));
    expect(c.stages.map((s) => s.layers)).toEqual([27, 27, 26]);
    expect(c.tokensPerReplica).toBe(Math.min(...c.stages.map((s) => s.tokens)));
    expect(c.kvBytesPerTokenPerGpu).toBe(27 * 1024);
  });
});

describe('fit and errors', () => {
  it('reports a negative budget and no tokens when the model does not fit', () => {
    const c = computeCapacity(base('llama-3.1-70b', { tensorParallel: 1 }));
    expect(c.fits).toBe(false);
    expect(c.kvBudgetBytesPerGpu).toBeLessThan(0);
    expect(c.tokensPerReplica).toBe(0);
  });

  it.each([
    [{ gpuMemoryUtilization: 1.5 }, /gpuMemoryUtilization: 1.5 is not allowed/],
    [{ tensorParallel: 0 }, /tensorParallel: 0 is not allowed/],
    [{ blockSize: 2.5 }, /blockSize/],
    [
      { pipelineParallel: 2, pipelineLayerSplit: [10, 10] },
      /must list 2 positive layer counts summing to 32/,
    ],
  ])('rejects %o', (overrides, message) => {
    expect(() => computeCapacity(base('llama-3.1-8b', overrides))).toThrow(message);
  });
});

describe('Hugging Face config.json', () => {
  const llama8b = {
    _name_or_path: 'meta-llama/Llama-3.1-8B',
    model_type: 'llama',
    hidden_size: 4096,
    intermediate_size: 14336,
    num_attention_heads: 32,
    num_hidden_layers: 32,
    num_key_value_heads: 8,
    vocab_size: 128256,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    max_position_embeddings: 131072,
  };

  it('derives head_dim = hidden_size / num_attention_heads and the 8.03B parameters', () => {
    const model = architectureFromHfConfig(llama8b, 'config.json');
    expect(model.headDim).toBe(128);
    expect(model.parameterCount).toBeCloseTo(8.03e9, -7);
    expect(kvBytesPerTokenUnsharded(model, 'auto')).toBe(131_072);
  });

  it('reads MLA keys (DeepSeek-V3)', () => {
    const model = architectureFromHfConfig(
      {
        num_hidden_layers: 61,
        num_attention_heads: 128,
        num_key_value_heads: 128,
        hidden_size: 7168,
        kv_lora_rank: 512,
        qk_rope_head_dim: 64,
      },
      'ds.json',
    );
    expect(model.attention).toBe('mla');
    expect(kvBytesPerTokenUnsharded(model, 'auto')).toBe(70_272);
  });

  it('reads layer_types (gpt-oss) and the Gated DeltaNet state (Qwen3-Next: 39,518,208 B/sequence)', () => {
    const gptOss = architectureFromHfConfig(
      {
        num_hidden_layers: 4,
        num_attention_heads: 64,
        num_key_value_heads: 8,
        head_dim: 64,
        sliding_window: 128,
        layer_types: ['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention'],
      },
      'g.json',
    );
    expect(gptOss.layerKinds).toEqual(['sliding', 'full', 'sliding', 'full']);
    const next = architectureFromHfConfig(
      {
        num_hidden_layers: 48,
        num_attention_heads: 16,
        num_key_value_heads: 2,
        head_dim: 256,
        hidden_size: 2048,
        full_attention_interval: 4,
        linear_num_value_heads: 32,
        linear_num_key_heads: 16,
        linear_key_head_dim: 128,
        linear_value_head_dim: 128,
        linear_conv_kernel_dim: 4,
      },
      'n.json',
    );
    expect(next.layerKinds.filter((k) => k === 'full')).toHaveLength(12);
    expect(next.stateBytesPerSequence).toBe(39_518_208);
  });

  it('Jamba: attention every 8th layer from offset 4, Mamba state 8,716,288 B/sequence', () => {
    const jamba = architectureFromHfConfig(
      {
        num_hidden_layers: 32,
        num_attention_heads: 32,
        num_key_value_heads: 8,
        hidden_size: 4096,
        attn_layer_offset: 4,
        attn_layer_period: 8,
        mamba_expand: 2,
        mamba_d_state: 16,
        mamba_d_conv: 4,
      },
      'j.json',
    );
    expect(jamba.layerKinds.filter((k) => k === 'full')).toHaveLength(4);
    expect(jamba.stateBytesPerSequence).toBe(8_716_288);
  });

  it('names every missing key', () => {
    expect(() => architectureFromHfConfig({ hidden_size: 10 }, 'bad.json')).toThrow(
      /bad.json lacks num_hidden_layers, num_attention_heads/,
    );
  });
});

describe('properties', () => {
  const modelIds = modelPresetIds();
  const gpuIds = gpuPresetIds();
  const inputs = fc.record({
    modelId: fc.constantFrom(...modelIds),
    gpuId: fc.constantFrom(...gpuIds),
    tp: fc.constantFrom(1, 2, 4, 8),
    util: fc.double({ min: 0.5, max: 0.98, noNaN: true }),
    reservedGiB: fc.double({ min: 0, max: 8, noNaN: true }),
    weightsGiB: fc.double({ min: 1, max: 200, noNaN: true }),
    context: fc.integer({ min: 256, max: 131_072 }),
  });
  type Drawn = typeof inputs extends fc.Arbitrary<infer T> ? T : never;
  const toInput = (v: Drawn): CapacityInput =>
    base(v.modelId, {
      gpuMemoryGiB: findGpuPreset(v.gpuId)?.memoryGiB ?? 80,
      tensorParallel: v.tp,
      gpuMemoryUtilization: v.util,
      reservedGiB: v.reservedGiB,
      weightsGiB: v.weightsGiB,
      contextTokens: v.context,
    });

  it('capacity is never negative and is a whole number of blocks', () => {
    fc.assert(
      fc.property(inputs, (v) => {
        const c = computeCapacity(toInput(v));
        expect(c.tokensPerReplica).toBeGreaterThanOrEqual(0);
        expect(c.tokensPerReplica % c.blockSize).toBe(0);
        expect(c.maxConcurrentSequences ?? 0).toBeGreaterThanOrEqual(0);
      }),
    );
  });

  it('more GPU memory never gives fewer tokens', () => {
    fc.assert(
      fc.property(inputs, fc.double({ min: 0, max: 100, noNaN: true }), (v, extraGiB) => {
        const input = toInput(v);
        const more = computeCapacity({ ...input, gpuMemoryGiB: input.gpuMemoryGiB + extraGiB });
        expect(more.tokensPerReplica).toBeGreaterThanOrEqual(computeCapacity(input).tokensPerReplica);
      }),
    );
  });

  it('fp8 KV doubles tokens where weights and reserve are fixed (to the block: floor(2x) is 2 floor(x) or one more)', () => {
    fc.assert(
      fc.property(inputs, (v) => {
        const input = { ...toInput(v), contextTokens: undefined };
        if (requireModelPreset(v.modelId).layerKinds.some((k) => k !== 'full')) return;
        const bf16 = computeCapacity({ ...input, kvCacheDtype: 'bf16' });
        const fp8 = computeCapacity({ ...input, kvCacheDtype: 'fp8' });
        expect(fp8.kvBytesPerTokenPerGpu * 2).toBe(bf16.kvBytesPerTokenPerGpu);
        const extra = fp8.tokensPerReplica - 2 * bf16.tokensPerReplica;
        expect(extra === 0 || extra === bf16.blockSize).toBe(true);
      }),
    );
  });
});
