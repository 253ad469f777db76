/**
 * Reads a copy of an upstream response for what the gateway measures: when the first output token
 * arrived, the output text (to count when the upstream reports no usage), and the upstream's own
 * `usage`. The bytes the client receives are not touched here, except by `UsageStripper` below,
 * which only runs when the gateway itself asked for the usage chunk.
 *
 * Shapes read (OpenAI-compatible; vLLM, SGLang, TGI, llama.cpp and Ollama follow them):
 * - chat chunks `choices[].delta.{content, reasoning_content, reasoning, refusal, tool_calls[].function.arguments}`,
 *   final chunk `usage.{prompt_tokens, completion_tokens}` (with stream_options.include_usage);
 * - completions chunks `choices[].text`;
 * - Responses events `response.*.delta` (`delta`) and `response.completed` (`response.usage.{input_tokens, output_tokens}`);
 * - non-streaming bodies: the same fields under `choices[].message`, `choices[].text`, `output[]` and `usage`.
 */
import type { EndpointKind } from '../tokens/anatomy.ts';

export interface UpstreamUsage {
  promptTokens: number | undefined;
  completionTokens: number | undefined;
}

function asCount(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

function readUsage(usage: unknown): UpstreamUsage | undefined {
  if (usage === null || typeof usage !== 'object') return undefined;
  const u = usage as Record<string, unknown>;
  const promptTokens = asCount(u['prompt_tokens']) ?? asCount(u['input_tokens']);
  const completionTokens = asCount(u['completion_tokens']) ?? asCount(u['output_tokens']);
  if (promptTokens === undefined && completionTokens === undefined) return undefined;
  return { promptTokens, completionTokens };
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
}

/** Output text found in one parsed chunk or body (content, reasoning, tool-call arguments). */
function outputTexts(kind: EndpointKind, obj: Record<string, unknown>, into: string[]): void {
  const push = (v: unknown) => {
    if (typeof v === 'string' && v.length > 0) into.push(v);
  };
  const type = obj['type'];
  if (typeof type === 'string') {
    if (type.startsWith('response.') && type.endsWith('.delta')) push(obj['delta']);
    return;
  }
  if (kind === 'responses') {
    for (const item of Array.isArray(obj['output']) ? obj['output'] : []) {
      const i = record(item);
      if (i === undefined) continue;
      push(i['arguments']);
      for (const part of Array.isArray(i['content']) ? i['content'] : []) push(record(part)?.['text']);
      for (const part of Array.isArray(i['summary']) ? i['summary'] : []) push(record(part)?.['text']);
    }
    return;
  }
  for (const choice of Array.isArray(obj['choices']) ? obj['choices'] : []) {
    const c = record(choice);
    if (c === undefined) continue;
    push(c['text']);
    const m = record(c['delta']) ?? record(c['message']);
    if (m === undefined) continue;
    push(m['content']);
    push(m['reasoning_content']);
    push(m['reasoning']);
    push(m['refusal']);
    for (const call of Array.isArray(m['tool_calls']) ? m['tool_calls'] : []) {
      const fn = record(record(call)?.['function']);
      push(fn?.['name']);
      push(fn?.['arguments']);
    }
  }
}

export interface ObservedResponse {
  usage: UpstreamUsage | undefined;
  /** Output text seen, for counting when usage is missing; undefined if it exceeded the parse limit. */
  outputText: string | undefined;
  /** Output chunks seen while streaming (a running estimate of output tokens). */
  outputChunks: number;
}

/**
 * Splits an SSE byte stream into events (blank-line separated, any of CRLF/LF/CR line endings).
 * Returns the raw text of each complete event, with its terminating blank line.
 */
export class SseSplitter {
  readonly #decoder = new TextDecoder('utf-8');
  #buffer = '';

  push(chunk: Uint8Array): string[] {
    this.#buffer += this.#decoder.decode(chunk, { stream: true });
    const events: string[] = [];
    const boundary = /\r\n\r\n|\n\n|\r\r/g;
    let start = 0;
    let match = boundary.exec(this.#buffer);
    while (match !== null) {
      const end = match.index + match[0].length;
      events.push(this.#buffer.slice(start, end));
      start = end;
      match = boundary.exec(this.#buffer);
    }
    this.#buffer = this.#buffer.slice(start);
    return events;
  }

  /** Whatever is left when the stream ends (an event without its blank line). */
  rest(): string {
    const rest = this.#buffer + this.#decoder.decode();
    this.#buffer = '';
    return rest;
  }
}

/** The `data:` payload of one SSE event (lines joined with \n), or undefined if it has none. */
export function sseData(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split(/\r\n|\n|\r/)) {
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === undefined ? value : `${data}\n${value}`;
  }
  return data;
}

export class ResponseObserver {
  readonly #kind: EndpointKind;
  readonly #streaming: boolean;
  readonly #maxBytes: number;
  readonly #onFirstToken: () => void;
  readonly #onOutputChunks: (chunks: number) => void;
  readonly #splitter = new SseSplitter();
  readonly #texts: string[] = [];
  #bodyChunks: Buffer[] = [];
  #bytes = 0;
  #overflow = false;
  #usage: UpstreamUsage | undefined;
  #chunks = 0;
  #firstToken = false;

  constructor(options: {
    kind: EndpointKind;
    streaming: boolean;
    maxBytes: number;
    onFirstToken: () => void;
    onOutputChunks: (chunks: number) => void;
  }) {
    this.#kind = options.kind;
    this.#streaming = options.streaming;
    this.#maxBytes = options.maxBytes;
    this.#onFirstToken = options.onFirstToken;
    this.#onOutputChunks = options.onOutputChunks;
  }

  push(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#maxBytes) {
      this.#overflow = true;
      this.#bodyChunks = [];
    }
    if (!this.#streaming) {
      if (!this.#overflow) this.#bodyChunks.push(chunk);
      return;
    }
    for (const event of this.#splitter.push(chunk)) this.#event(event);
  }

  /** Called with the events a streaming response produced, when the caller already split them. */
  event(event: string): void {
    this.#bytes += event.length;
    this.#event(event);
  }

  end(): ObservedResponse {
    if (this.#streaming) {
      const rest = this.#splitter.rest();
      if (rest.trim().length > 0) this.#event(rest);
    } else if (!this.#overflow && this.#bodyChunks.length > 0) {
      const body = record(safeJson(Buffer.concat(this.#bodyChunks).toString('utf8')));
      if (body !== undefined) {
        this.#usage = readUsage(body['usage']);
        outputTexts(this.#kind, body, this.#texts);
      }
    }
    return {
      usage: this.#usage,
      outputText: this.#overflow ? undefined : this.#texts.join(''),
      outputChunks: this.#chunks,
    };
  }

  #event(event: string): void {
    const data = sseData(event);
    if (data === undefined || data === '[DONE]') return;
    const obj = record(safeJson(data));
    if (obj === undefined) return;
    const usage = readUsage(obj['usage']) ?? readUsage(record(obj['response'])?.['usage']);
    if (usage !== undefined) this.#usage = usage;
    const before = this.#texts.length;
    if (this.#overflow) {
      const scratch: string[] = [];
      outputTexts(this.#kind, obj, scratch);
      if (scratch.length > 0) this.#output(scratch.length);
      return;
    }
    outputTexts(this.#kind, obj, this.#texts);
    if (this.#texts.length > before) this.#output(this.#texts.length - before);
  }

  #output(chunks: number): void {
    this.#chunks += chunks;
    if (!this.#firstToken) {
      this.#firstToken = true;
      this.#onFirstToken();
    }
    this.#onOutputChunks(this.#chunks);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Removes, from a stream whose usage chunk the gateway requested on the client's behalf, what the
 * client did not ask for: the final chunk that carries usage and no choices, and the
 * `"usage":null` field OpenAI-compatible servers add to every other chunk once include_usage is on.
 * Everything else is forwarded byte for byte, event by event.
 */
export class UsageStripper {
  transform(event: string): string {
    const data = sseData(event);
    if (data === undefined || !data.includes('"usage"')) return event;
    const obj = record(safeJson(data));
    if (obj === undefined || !('usage' in obj)) return event;
    const choices = obj['choices'];
    if (record(obj['usage']) !== undefined && Array.isArray(choices) && choices.length === 0) return '';
    if (obj['usage'] !== null) return event;
    // Servers put the field last (OpenAI, vLLM) or first; cut it there so every other byte stays.
    // Anywhere else, rebuild the payload without it (same content, compact formatting).
    let stripped = data.replace(/,\s*"usage"\s*:\s*null(\s*\})\s*$/, '$1');
    if (stripped === data) stripped = data.replace(/^(\s*\{)\s*"usage"\s*:\s*null\s*,/, '$1');
    if (stripped === data) {
      const { usage: _usage, ...rest } = obj;
      stripped = JSON.stringify(rest);
    }
    const at = event.indexOf(data);
    return at === -1
      ? `data: ${stripped}\n\n`
      : `${event.slice(0, at)}${stripped}${event.slice(at + data.length)}`;
  }
}
