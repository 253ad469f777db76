import { beforeAll, describe, expect, it } from 'vitest';
import { describeRequest } from './anatomy.ts';
import { CountCache } from './count-cache.ts';
import { type MemoTokenizer, TokenizerRegistry } from './encodings.ts';
import { DEFAULT_THRESHOLDS, findDiscipline, findJsonSpans } from './findings.ts';
import { ModelProfiles } from './model-profiles.ts';
import { countPrompt } from './prompt-count.ts';
import { TokenCounter } from './token-counter.ts';

let o200k: MemoTokenizer;
const counter = new TokenCounter({ cache: new CountCache(100) });

beforeAll(async () => {
  o200k = await new TokenizerRegistry().load('o200k_base');
});

async function findingsFor(body: unknown, thresholds = DEFAULT_THRESHOLDS) {
  const anatomy = describeRequest('chat', body);
  if (anatomy === undefined) throw new Error('no anatomy');
  const count = await countPrompt(anatomy, new ModelProfiles().resolve('gpt-4o'), o200k, counter);
  return findDiscipline(anatomy, count, o200k, counter, thresholds);
}

const records = Array.from({ length: 20 }, (_, i) => ({
  id: i,
  name: `customer ${i}`,
  balance: i * 10.5,
  open: i % 2 === 0,
}));

describe('findDiscipline', () => {
  it('reports a missing output limit, and nothing for a disciplined request', async () => {
    const loose = await findingsFor({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    expect(loose.map((f) => f.code)).toEqual(['no-output-limit']);
    const tight = await findingsFor({
      model: 'gpt-4o',
      max_tokens: 10,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(tight).toEqual([]);
  });

  it('reports a large system prompt with its size', async () => {
    const system = 'Follow the policy carefully. '.repeat(200);
    const found = await findingsFor(
      {
        model: 'gpt-4o',
        max_tokens: 10,
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: 'q' },
        ],
      },
      { ...DEFAULT_THRESHOLDS, systemPromptTokens: 500 },
    );
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ code: 'large-system-prompt', tokens: o200k.count(system) });
  });

  it('reports pretty-printed JSON with the saving of minifying, but not minified JSON', async () => {
    const pretty = JSON.stringify(records, null, 2);
    const found = await findingsFor({
      model: 'gpt-4o',
      max_tokens: 10,
      messages: [{ role: 'user', content: `Summarise:\n${pretty}` }],
    });
    expect(found.map((f) => f.code)).toEqual(['json-heavy-prompt']);
    expect(found[0]?.savingTokens).toBe(o200k.count(pretty) - o200k.count(JSON.stringify(records)));
    expect(found[0]?.savingTokens).toBeGreaterThan(100);
    const minified = await findingsFor({
      model: 'gpt-4o',
      max_tokens: 10,
      messages: [{ role: 'user', content: JSON.stringify(records) }],
    });
    expect(minified).toEqual([]);
  });

  it('reports conversation replay when earlier turns dominate', async () => {
    const messages = [];
    for (let i = 0; i < 5; i++) {
      messages.push({ role: 'user', content: `question ${i} about the quarterly numbers and the forecast` });
      messages.push({ role: 'assistant', content: `a long answer ${i} `.repeat(30) });
    }
    messages.push({ role: 'user', content: 'and now?' });
    const found = await findingsFor({ model: 'gpt-4o', max_tokens: 10, messages });
    expect(found.map((f) => f.code)).toEqual(['conversation-replay']);
    expect(found[0]?.message).toContain('5 earlier turns');
  });
});

describe('findJsonSpans', () => {
  it('finds objects and arrays at line starts, string-aware, and skips code', () => {
    const obj = JSON.stringify({
      text: 'a } inside a string ] too',
      list: [1, 2, 3],
      more: 'padding padding padding',
    });
    const text = `intro\n${obj}\nfunction f() { return { a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9 }; }\n[1, 2]`;
    const spans = findJsonSpans(text);
    expect(spans).toHaveLength(1);
    expect(spans[0]?.span).toBe(obj);
  });
});
