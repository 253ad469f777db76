import { describe, expect, it } from 'vitest';
import { ModelProfiles, ModelProfilesFileSchema } from './model-profiles.ts';

describe('ModelProfiles', () => {
  const profiles = new ModelProfiles();

  it.each([
    { model: 'gpt-4o', encoding: 'o200k_base', exact: true },
    { model: 'gpt-4o-mini-2024-07-18', encoding: 'o200k_base', exact: true },
    { model: 'openai/gpt-4.1', encoding: 'o200k_base', exact: true },
    { model: 'o3-mini', encoding: 'o200k_base', exact: true },
    { model: 'gpt-4-turbo', encoding: 'cl100k_base', exact: true },
    { model: 'gpt-3.5-turbo', encoding: 'cl100k_base', exact: true },
    { model: 'text-embedding-3-small', encoding: 'cl100k_base', exact: true },
    { model: 'meta-llama/Llama-3.1-8B-Instruct', encoding: 'o200k_base', exact: false },
    { model: undefined, encoding: 'o200k_base', exact: false },
  ])('$model -> $encoding', ({ model, encoding, exact }) => {
    const p = profiles.resolve(model);
    expect(p.encoding).toBe(encoding);
    expect(p.exactTokenizer).toBe(exact);
  });

  it('uses the Llama 3 template for Llama 3 models and OpenAI’s elsewhere', () => {
    expect(profiles.resolve('meta-llama/Llama-3.1-70B-Instruct').chatTemplate.tokensPerMessage).toBe(5);
    expect(profiles.resolve('gpt-4o').chatTemplate).toEqual({
      tokensPerMessage: 3,
      tokensPerName: 1,
      tokensPerReply: 3,
    });
  });

  it('applies the first matching override on top of the built-in profile', () => {
    const file = ModelProfilesFileSchema.parse({
      defaultEncoding: 'cl100k_base',
      models: [
        {
          match: ['qwen*'],
          encoding: 'o200k_base',
          chatTemplate: { tokensPerMessage: 4 },
          image: { tilePixels: 28 },
        },
        { match: ['*'], chatTemplate: { tokensPerReply: 7 } },
      ],
    });
    const custom = new ModelProfiles(file);
    const qwen = custom.resolve('Qwen/Qwen2.5-VL-7B-Instruct');
    expect(qwen.encoding).toBe('o200k_base');
    expect(qwen.exactTokenizer).toBe(false);
    expect(qwen.chatTemplate).toEqual({ tokensPerMessage: 4, tokensPerName: 1, tokensPerReply: 3 });
    expect(qwen.image.tilePixels).toBe(28);
    expect(qwen.image.baseTokens).toBe(85);
    expect(custom.resolve('mistral-7b').encoding).toBe('cl100k_base');
    expect(custom.resolve('mistral-7b').chatTemplate.tokensPerReply).toBe(7);
    expect(custom.encodingsInUse().sort()).toEqual(['cl100k_base', 'o200k_base']);
  });

  it('rejects unknown keys and encodings in a profiles file', () => {
    expect(ModelProfilesFileSchema.safeParse({ models: [{ match: ['x'], encoding: 'p50k' }] }).success).toBe(
      false,
    );
    expect(
      ModelProfilesFileSchema.safeParse({ models: [{ match: ['x'], tokenizer: 'o200k_base' }] }).success,
    ).toBe(false);
    expect(ModelProfilesFileSchema.safeParse({ models: [{ match: [] }] }).success).toBe(false);
  });
});
