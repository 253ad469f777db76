import { beforeAll, describe, expect, it } from 'vitest';
import { describeRequest } from './anatomy.ts';
import { CountCache } from './count-cache.ts';
import { type MemoTokenizer, TokenizerRegistry } from './encodings.ts';
import { ModelProfiles } from './model-profiles.ts';
import { countPrompt, scaleComponents } from './prompt-count.ts';
import { TokenCounter } from './token-counter.ts';

let o200k: MemoTokenizer;
const counter = new TokenCounter({ cache: new CountCache(100) });
const profiles = new ModelProfiles();

beforeAll(async () => {
  o200k = await new TokenizerRegistry().load('o200k_base');
});

describe('countPrompt', () => {
  it("matches OpenAI's cookbook count for a chat request", async () => {
    // Cookbook rule for gpt-4o: 3 tokens per message, 1 per name, 3 to prime the reply.
    const messages = [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
      { role: 'assistant', content: 'Things working well together will increase revenue.' },
      { role: 'user', content: 'This late pivot means we do not have time to boil the ocean.' },
    ];
    const anatomy = describeRequest('chat', { model: 'gpt-4o', messages });
    if (anatomy === undefined) throw new Error('no anatomy');
    const result = await countPrompt(anatomy, profiles.resolve('gpt-4o'), o200k, counter);
    let expected = 3;
    for (const m of messages) {
      expected += 3 + o200k.count(m.content) + (m.name === undefined ? 0 : 1 + o200k.count(m.name));
    }
    expect(result.totalTokens).toBe(expected);
    expect(result.components).toEqual({
      system: o200k.count(messages[0]?.content ?? ''),
      history:
        o200k.count('example_user') +
        o200k.count(messages[1]?.content ?? '') +
        o200k.count(messages[2]?.content ?? ''),
      user: o200k.count(messages[3]?.content ?? ''),
      tool: 0,
      image: 0,
      template: 3 * 4 + 1 + 3,
    });
    expect(result.exactTokenizer).toBe(true);
  });

  it('moves retrieved context to tool, and prices images', async () => {
    const context = 'Refunds are accepted within 30 days of purchase with a receipt.';
    const anatomy = describeRequest('chat', {
      model: 'gpt-4o',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: `<context>${context}</context>\nCan I return it?` },
            { type: 'image_url', image_url: { url: 'https://example.invalid/x.png', detail: 'high' } },
          ],
        },
      ],
    });
    if (anatomy === undefined) throw new Error('no anatomy');
    const result = await countPrompt(anatomy, profiles.resolve('gpt-4o'), o200k, counter);
    const whole = o200k.count(`<context>${context}</context>\nCan I return it?`);
    expect(result.components.tool).toBe(o200k.count(context));
    expect(result.components.user).toBe(whole - o200k.count(context));
    expect(result.components.image).toBe(765);
    expect(result.totalTokens).toBe(whole + 765 + 3 + 3);
  });

  it('counts completions without template tokens', async () => {
    const anatomy = describeRequest('completions', { model: 'm', prompt: ['hello world', [1, 2, 3]] });
    if (anatomy === undefined) throw new Error('no anatomy');
    const result = await countPrompt(anatomy, profiles.resolve('m'), o200k, counter, { sync: true });
    expect(result.totalTokens).toBe(2 + 3);
    expect(result.components.template).toBe(0);
    expect(result.exactTokenizer).toBe(false);
  });
});

describe('scaleComponents', () => {
  it.each([
    { given: { system: 300, user: 100 }, total: 500, want: { system: 375, user: 125 } },
    { given: { system: 1, user: 1, tool: 1 }, total: 10, want: { system: 4, user: 3, tool: 3 } },
    { given: {}, total: 42, want: { user: 42 } },
    { given: { history: 10 }, total: 0, want: {} },
  ])('$given to $total', ({ given, total, want }) => {
    const base = { system: 0, history: 0, user: 0, tool: 0, image: 0, template: 0 };
    const scaled = scaleComponents({ ...base, ...given }, total);
    expect(scaled).toEqual({ ...base, ...want });
    expect(Object.values(scaled).reduce((a, b) => a + b, 0)).toBe(total);
  });
});
