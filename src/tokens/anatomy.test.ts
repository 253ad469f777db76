import { describe, expect, it } from 'vitest';
import { describeRequest, endpointKind } from './anatomy.ts';

describe('endpointKind', () => {
  it.each([
    { path: '/v1/chat/completions', kind: 'chat' },
    { path: '/v1/chat/completions/?x=1', kind: 'chat' },
    { path: '/openai/v1/completions', kind: 'completions' },
    { path: '/v1/responses', kind: 'responses' },
    { path: '/v1/embeddings', kind: 'embeddings' },
    { path: '/v1/models', kind: undefined },
  ])('$path', ({ path, kind }) => {
    expect(endpointKind(path)).toBe(kind);
  });
});

describe('describeRequest', () => {
  it('splits a chat request into system, history, user and tool', () => {
    const a = describeRequest('chat', {
      model: 'gpt-4o',
      max_tokens: 100,
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
      tools: [{ type: 'function', function: { name: 'lookup', parameters: {} } }],
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'first question' },
        {
          role: 'assistant',
          content: 'first answer',
          tool_calls: [{ function: { name: 'lookup', arguments: '{"q":1}' } }],
        },
        { role: 'tool', content: 'tool result' },
        { role: 'user', name: 'ada', content: [{ type: 'text', text: 'second question' }] },
        { role: 'assistant', content: 'thinking step' },
      ],
    });
    expect(a).toBeDefined();
    expect(a?.texts).toEqual([
      { component: 'system', text: '[{"type":"function","function":{"name":"lookup","parameters":{}}}]' },
      { component: 'system', text: 'You are terse.' },
      { component: 'history', text: 'first question' },
      { component: 'history', text: 'first answer' },
      { component: 'history', text: 'lookup{"q":1}' },
      { component: 'tool', text: 'tool result' },
      { component: 'user', text: 'ada' },
      { component: 'user', text: 'second question' },
      { component: 'history', text: 'thinking step' },
    ]);
    expect(a).toMatchObject({
      kind: 'chat',
      model: 'gpt-4o',
      templatedMessages: 6,
      namedMessages: 1,
      historyTurns: 1,
      maxOutputTokens: 100,
      choices: 2,
      stream: true,
      streamIncludeUsage: true,
    });
  });

  it('finds retrieved context inside tags and images with their size', () => {
    const png = Buffer.alloc(33);
    png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    png.writeUInt32BE(640, 16);
    png.writeUInt32BE(480, 20);
    const a = describeRequest('chat', {
      model: 'x',
      messages: [
        {
          role: 'user',
          content: [
            {
              type: 'text',
              text: 'Answer from <context source="kb">the refund window is 30 days</context>. When?',
            },
            {
              type: 'image_url',
              image_url: { url: `data:image/png;base64,${png.toString('base64')}`, detail: 'low' },
            },
            { type: 'image_url', image_url: { url: 'https://example.invalid/a.jpg' } },
          ],
        },
      ],
    });
    expect(a?.retrieved).toEqual([{ partIndex: 0, text: 'the refund window is 30 days' }]);
    expect(a?.images).toEqual([
      { detail: 'low', size: { widthPixels: 640, heightPixels: 480 } },
      { detail: 'auto', size: undefined },
    ]);
    expect(a?.maxOutputTokens).toBeUndefined();
  });

  it('reads Responses API input items', () => {
    const a = describeRequest('responses', {
      model: 'gpt-4.1',
      instructions: 'Be brief.',
      max_output_tokens: 50,
      input: [
        { role: 'user', content: [{ type: 'input_text', text: 'weather?' }] },
        { type: 'function_call', name: 'weather', arguments: '{"city":"Oslo"}' },
        { type: 'function_call_output', output: '{"temp": 3}' },
      ],
    });
    expect(a?.texts.map((t) => [t.component, t.text])).toEqual([
      ['system', 'Be brief.'],
      ['user', 'weather?'],
      ['history', 'weather{"city":"Oslo"}'],
      ['tool', '{"temp": 3}'],
    ]);
    expect(a?.templatedMessages).toBe(4);
    expect(a?.maxOutputTokens).toBe(50);
    expect(describeRequest('responses', { input: 'hi' })?.texts).toEqual([{ component: 'user', text: 'hi' }]);
  });

  it('counts token-id prompts and marks embeddings as non-generating', () => {
    const c = describeRequest('completions', {
      model: 'm',
      prompt: [
        [1, 2, 3],
        [4, 5],
      ],
    });
    expect(c?.tokenIdCount).toBe(5);
    expect(c?.templatedMessages).toBe(0);
    const e = describeRequest('embeddings', { model: 'm', input: ['a', 'b'] });
    expect(e?.texts).toHaveLength(2);
    expect(e?.maxOutputTokens).toBe(0);
  });

  it.each([
    { kind: 'chat', body: { messages: 'nope' } },
    { kind: 'chat', body: [1, 2] },
    { kind: 'chat', body: null },
    { kind: 'completions', body: { model: 'm' } },
    { kind: 'responses', body: { model: 'm' } },
  ] as const)('gives no anatomy for a $kind body it cannot read', ({ kind, body }) => {
    expect(describeRequest(kind, body)).toBeUndefined();
  });

  it('ignores fields of unexpected types instead of failing', () => {
    const a = describeRequest('chat', {
      model: 7,
      max_tokens: 'many',
      n: -1,
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(a).toMatchObject({ model: undefined, maxOutputTokens: undefined, choices: 1 });
  });
});
