import { describe, expect, it } from 'vitest';
import { ResponseObserver, SseSplitter, sseData, UsageStripper } from './response-observer.ts';

function observe(kind: 'chat' | 'completions' | 'responses', streaming: boolean, chunks: string[]) {
  const events: string[] = [];
  const observer = new ResponseObserver({
    kind,
    streaming,
    maxBytes: 1 << 20,
    onFirstToken: () => events.push('first'),
    onOutputChunks: (n) => events.push(`chunks:${n}`),
  });
  for (const c of chunks) observer.push(Buffer.from(c));
  return { result: observer.end(), events };
}

describe('SseSplitter', () => {
  it('splits events across chunk boundaries and line-ending styles, UTF-8 split mid-character', () => {
    const splitter = new SseSplitter();
    const bytes = Buffer.from('data: a\n\ndata: é\r\n\r\ndata: c\r\rdata: tail');
    const got: string[] = [];
    for (let i = 0; i < bytes.length; i += 3) got.push(...splitter.push(bytes.subarray(i, i + 3)));
    expect(got).toEqual(['data: a\n\n', 'data: é\r\n\r\n', 'data: c\r\r']);
    expect(splitter.rest()).toBe('data: tail');
  });

  it('joins multi-line data', () => {
    expect(sseData('event: x\ndata: {"a":\ndata:1}\n\n')).toBe('{"a":\n1}');
    expect(sseData(': comment\n\n')).toBeUndefined();
  });
});

describe('ResponseObserver', () => {
  it('reads a chat stream: first token, output text, final usage', () => {
    const { result, events } = observe('chat', true, [
      'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n',
      'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\ndata: {"choices":[{"delta":{"reasoning_content":"hmm"}}]}\n\n',
      'data: {"choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}}]}\n\n',
      'data: {"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7}}\n\ndata: [DONE]\n\n',
    ]);
    expect(result).toEqual({
      usage: { promptTokens: 11, completionTokens: 7 },
      outputText: 'Helhmmf{}',
      outputChunks: 4,
    });
    expect(events[0]).toBe('first');
  });

  it('reads Responses API events', () => {
    const { result } = observe('responses', true, [
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}\n\n',
      'event: response.completed\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":5,"output_tokens":1}}}\n\n',
    ]);
    expect(result).toEqual({
      usage: { promptTokens: 5, completionTokens: 1 },
      outputText: 'Hi',
      outputChunks: 1,
    });
  });

  it.each([
    {
      kind: 'chat' as const,
      body: {
        choices: [{ message: { content: 'answer' } }],
        usage: { prompt_tokens: 3, completion_tokens: 1 },
      },
      text: 'answer',
    },
    { kind: 'completions' as const, body: { choices: [{ text: 'done' }] }, text: 'done' },
    {
      kind: 'responses' as const,
      body: {
        output: [{ type: 'message', content: [{ type: 'output_text', text: 'ok' }] }],
        usage: { input_tokens: 2, output_tokens: 1 },
      },
      text: 'ok',
    },
  ])('reads a non-streaming $kind body', ({ kind, body, text }) => {
    const json = JSON.stringify(body);
    const { result } = observe(kind, false, [json.slice(0, 10), json.slice(10)]);
    expect(result.outputText).toBe(text);
    const usage = (body as { usage?: { prompt_tokens?: number; input_tokens?: number } }).usage;
    expect(result.usage?.promptTokens).toBe(usage?.prompt_tokens ?? usage?.input_tokens);
  });

  it('gives up on the text past the size limit instead of holding it', () => {
    const observer = new ResponseObserver({
      kind: 'chat',
      streaming: false,
      maxBytes: 16,
      onFirstToken: () => {},
      onOutputChunks: () => {},
    });
    observer.push(Buffer.from(JSON.stringify({ choices: [{ message: { content: 'x'.repeat(100) } }] })));
    expect(observer.end()).toEqual({ usage: undefined, outputText: undefined, outputChunks: 0 });
  });
});

describe('UsageStripper', () => {
  const stripper = new UsageStripper();
  it.each([
    {
      name: 'removes the usage chunk',
      event: 'data: {"id":"x","choices":[],"usage":{"prompt_tokens":1}}\n\n',
      want: '',
    },
    {
      name: 'removes usage:null after other fields',
      event: 'data: {"id":"x","choices":[{"delta":{"content":"a"}}],"usage":null}\n\n',
      want: 'data: {"id":"x","choices":[{"delta":{"content":"a"}}]}\n\n',
    },
    {
      name: 'removes usage:null before other fields, with spaces',
      event: 'data: {"usage": null, "id":"x"}\n\n',
      want: 'data: { "id":"x"}\n\n',
    },
    {
      name: 'rebuilds the payload when usage sits in the middle',
      event: 'data: {"id":"x","usage":null,"choices":[{"delta":{"content":",\\"usage\\":null}"}}]}\n\n',
      want: 'data: {"id":"x","choices":[{"delta":{"content":",\\"usage\\":null}"}}]}\n\n',
    },
    { name: 'leaves [DONE] alone', event: 'data: [DONE]\n\n', want: 'data: [DONE]\n\n' },
    {
      name: 'leaves a "usage" inside content alone',
      event: 'data: {"choices":[{"delta":{"content":"\\"usage\\":null"}}]}\n\n',
      want: 'data: {"choices":[{"delta":{"content":"\\"usage\\":null"}}]}\n\n',
    },
  ])('$name', ({ event, want }) => {
    expect(stripper.transform(event)).toBe(want);
  });
});
