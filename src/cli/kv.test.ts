import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../test/support/run-cli.ts';
import { gpuPresetIds, modelPresetIds } from '../capacity/presets.ts';

describe('tokenscaler kv', () => {
  it('prints the DESIGN.md JSON fields for the README example', async () => {
    const r = await runCli([
      'kv',
      '--model',
      'llama-3.1-70b',
      '--gpu',
      'h100-80gb',
      '--tp',
      '4',
      '--context',
      '8192',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      kvBytesPerToken: 327_680,
      kvBytesPerTokenPerGpu: 81_920,
      weightsBytesPerGpu: 35_275_000_000,
      tensorParallel: 4,
      contextTokens: 8192,
    });
    for (const field of ['kvBudgetBytesPerGpu', 'tokensPerReplica', 'maxConcurrentSequences']) {
      expect(typeof out[field]).toBe('number');
    }
    // Budget = floor(79.2 GiB x 0.9) - 35.275e9 - 2 GiB; tokens = whole blocks of 16 x 80 KiB.
    expect(out.tokensPerReplica).toBe(Math.floor(out.kvBudgetBytesPerGpu / (81_920 * 16)) * 16);
    expect(out.maxConcurrentSequences).toBe(Math.floor(out.tokensPerReplica / 8192));
  });

  it('prints a human table with units', async () => {
    const r = await runCli(['kv', '--model', 'llama-3.1-8b', '--gpu', 'h100-80gb', '--context', '32768']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/KV bytes per token\s+128 KiB\s+128 KiB/);
    expect(r.stdout).toMatch(/weights\s+14\.96 GiB/);
    expect(r.stdout).toMatch(/sequences of 32,768 tokens\s+\d+/);
  });

  it('answers for every model and GPU preset pair (exit 0 when it fits, 1 with advice when it does not)', async () => {
    for (const model of modelPresetIds()) {
      for (const gpu of gpuPresetIds()) {
        const r = await runCli(['kv', '--model', model, '--gpu', gpu, '--json']);
        const out = JSON.parse(r.stdout);
        expect(out.model).toBe(model);
        if (r.code === 0) {
          expect(out.tokensPerReplica).toBeGreaterThan(0);
        } else {
          expect(r.code).toBe(1);
          expect(r.stderr).toMatch(/What would fit: /);
          expect(out.fits).toBe(false);
        }
      }
    }
  });

  it('says by how much a model misses and what would fit', async () => {
    const r = await runCli(['kv', '--model', 'llama-3.1-70b', '--gpu', 'h100-80gb']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/exceed the usable 71\.28 GiB per GPU by 62\.13 GiB/);
    expect(r.stderr).toMatch(/--tp 2 \(2 GPUs per replica\)/);
  });

  it('suggests fp8 KV when one long sequence does not fit the budget', async () => {
    const r = await runCli([
      'kv',
      '--model',
      'llama-3.1-8b',
      '--gpu',
      'l4',
      '--context',
      '131072',
      '--reserved-gib',
      '1',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/one sequence of 131072 tokens/);
    expect(r.stderr).toMatch(/--kv-dtype fp8|--tp/);
  });

  it('reads a Hugging Face config.json', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kv-'));
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        num_hidden_layers: 32,
        num_attention_heads: 32,
        num_key_value_heads: 8,
        hidden_size: 4096,
        intermediate_size: 14336,
        vocab_size: 128256,
      }),
    );
    const r = await runCli(['kv', '--model', 'config.json', '--gpu', 'a100-80gb', '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).kvBytesPerToken).toBe(131_072);
  });

  it.each([
    [
      ['--model', 'lama-3.1-70b', '--gpu', 'h100'],
      /unknown preset "lama-3.1-70b"; did you mean llama-3.1-70b/,
    ],
    [['--model', 'llama-3.1-8b', '--gpu', 'h101'], /--gpu: unknown preset "h101"; did you mean h100/],
    [
      ['--model', 'llama-3.1-8b', '--gpu', 'h100', '--tp', '0'],
      /--tp: "0" is not allowed; expected an integer from 1 to 1024/,
    ],
    [
      ['--model', 'llama-3.1-8b', '--gpu', 'h100', '--gpu-memory-utilization', '1.2'],
      /--gpu-memory-utilization: "1.2" is not allowed; expected a number greater than 0 to 1/,
    ],
    [
      ['--model', 'llama-3.1-8b', '--gpu', 'h100', '--kv-dtype', 'int3'],
      /--kv-dtype: "int3" is not allowed; expected one of auto, bf16, fp16, fp8/,
    ],
    [['--model', 'llama-3.1-8b'], /--gpu: is required/],
    [['--model', 'missing.json', '--gpu', 'h100'], /--model: cannot read config file/],
    [['--model', 'llama-3.1-8b', '--gpu', 'h100', '--bogus'], /Unknown option '--bogus'/],
  ])('rejects %j with a clear one-line error', async (args, message) => {
    const r = await runCli(['kv', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
