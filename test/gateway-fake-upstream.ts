/**
 * A fake OpenAI-compatible server on 127.0.0.1 for the gateway tests and benchmarks. It answers
 * deterministically (the same request gives the same bytes, so gateway and direct responses can
 * be compared byte for byte) and fails on request in every way a real one does.
 *
 * Its usage numbers are computed independently of src/tokens: js-tiktoken's own encoder and
 * OpenAI's cookbook rule for chat (3 tokens per message, 1 per name, 3 for the reply).
 *
 * Control header `x-fake` (comma-separated):
 *   status-<code>   answer with that status and an OpenAI-style error body
 *   reset-before    destroy the connection without answering
 *   reset-mid       stream two chunks, then destroy the connection
 *   hang            never answer
 *   slow            streaming: 20 ms between chunks, and keep streaming until the client goes away
 *   first-delay-<ms> wait before the first output chunk (the role chunk is still sent at once)
 *   no-usage        leave `usage` out of non-streaming bodies
 *   gzip            gzip the response body
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { Tiktoken } from 'js-tiktoken/lite';
import o200k from 'js-tiktoken/ranks/o200k_base';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodySha256: string;
  body: string;
  /** True when the client (the gateway) closed the connection before the response ended. */
  cancelled: boolean;
  /** Prompt tokens the fake reported (or would have reported) in usage. */
  promptTokens: number | undefined;
  completionTokens: number | undefined;
}

const encoder = new Tiktoken(o200k);
const countTokens = (text: string) => encoder.encode(text, [], []).length;

function chatPromptTokens(messages: { role?: string; name?: string; content?: unknown }[]): number {
  let total = 3;
  for (const m of messages) {
    total += 3;
    if (typeof m.content === 'string') total += countTokens(m.content);
    if (typeof m.name === 'string') total += 1 + countTokens(m.name);
  }
  return total;
}

/** A deterministic reply of `words` words derived from the request body. */
function replyWords(seed: string, words: number): string[] {
  const vocabulary = [
    'the',
    'token',
    'cache',
    'scales',
    'replica',
    ' GPU',
    'λ',
    '東京',
    '🙂',
    'prefill',
    'decode',
    '42',
  ];
  const digest = createHash('sha256').update(seed).digest();
  return Array.from({ length: words }, (_, i) => `${vocabulary[(digest[i % 32] ?? 0) % vocabulary.length]} `);
}

export class FakeUpstream {
  readonly received: ReceivedRequest[] = [];
  readonly server: http.Server;
  #url = '';

  constructor() {
    this.server = http.createServer((req, res) => void this.#handle(req, res));
    this.server.keepAliveTimeout = 30_000;
  }

  get url(): string {
    return this.#url;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.#url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.#url;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Waits until a request matching the predicate has been marked cancelled (bounded). */
  async waitForCancel(
    predicate: (r: ReceivedRequest) => boolean,
    timeoutMs = 5000,
  ): Promise<ReceivedRequest> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.received.find((r) => r.cancelled && predicate(r));
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error('upstream request was not cancelled in time');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const record: ReceivedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      bodySha256: createHash('sha256').update(raw).digest('hex'),
      body: raw.toString('utf8'),
      cancelled: false,
      promptTokens: undefined,
      completionTokens: undefined,
    };
    this.received.push(record);
    res.on('close', () => {
      if (!res.writableFinished) record.cancelled = true;
    });
    const modes = new Set(
      String(req.headers['x-fake'] ?? '')
        .split(',')
        .filter(Boolean),
    );
    const mode = (prefix: string) => [...modes].find((m) => m.startsWith(prefix))?.slice(prefix.length);

    if (modes.has('reset-before')) {
      req.socket.destroy();
      return;
    }
    if (modes.has('hang')) return;
    const status = mode('status-');
    if (status !== undefined) {
      const body = JSON.stringify({ error: { message: `fake ${status}`, type: 'fake_error', code: status } });
      res.writeHead(Number(status), {
        'content-type': 'application/json',
        'retry-after': '7',
        'x-fake-upstream': 'yes',
      });
      res.end(body);
      return;
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      this.#send(
        res,
        modes,
        200,
        JSON.stringify({ object: 'list', data: [{ id: 'gpt-4o', object: 'model' }] }),
      );
      return;
    }
    if (req.url === '/echo') {
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
      res.end(raw);
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      this.#send(
        res,
        modes,
        400,
        JSON.stringify({ error: { message: 'invalid JSON', type: 'invalid_request_error' } }),
      );
      return;
    }
    const path = (req.url ?? '').split('?')[0] ?? '';
    const model = String(body['model'] ?? 'none');
    const maxTokens = Number(body['max_completion_tokens'] ?? body['max_tokens'] ?? 16);
    // The reply and id ignore stream_options, so a request the gateway asked usage for on the
    // client's behalf gets the same bytes as the client's own request.
    const { stream_options: _streamOptions, ...seedFields } = body;
    const seed = createHash('sha256').update(JSON.stringify(seedFields)).digest('hex');
    const words = replyWords(seed, Math.max(1, Math.min(maxTokens, 64)));
    const text = words.join('');
    let promptTokens: number;
    if (path.endsWith('/chat/completions')) {
      promptTokens = chatPromptTokens(Array.isArray(body['messages']) ? body['messages'] : []);
    } else if (path.endsWith('/embeddings')) {
      promptTokens = countTokens(String(body['input'] ?? ''));
    } else {
      promptTokens = countTokens(String(body['prompt'] ?? ''));
    }
    const completionTokens = path.endsWith('/embeddings') ? 0 : countTokens(text);
    record.promptTokens = promptTokens;
    record.completionTokens = completionTokens;
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    };
    const id = `fake-${seed.slice(0, 12)}`;
    const chat = path.endsWith('/chat/completions');

    if (body['stream'] !== true) {
      const payload: Record<string, unknown> = path.endsWith('/embeddings')
        ? { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], model }
        : chat
          ? {
              id,
              object: 'chat.completion',
              created: 1,
              model,
              choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'length' }],
            }
          : {
              id,
              object: 'text_completion',
              created: 1,
              model,
              choices: [{ index: 0, text, finish_reason: 'length' }],
            };
      if (!modes.has('no-usage')) payload['usage'] = usage;
      this.#send(res, modes, 200, JSON.stringify(payload));
      return;
    }

    const includeUsage =
      (body['stream_options'] as { include_usage?: boolean } | undefined)?.include_usage === true;
    const usageField = includeUsage ? ',"usage":null' : '';
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const event = (json: string) => `data: ${json}\n\n`;
    const chunk = (delta: string, finish: string | null) =>
      chat
        ? `{"id":"${id}","object":"chat.completion.chunk","created":1,"model":"${model}","choices":[{"index":0,"delta":${delta},"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]${usageField}}`
        : `{"id":"${id}","object":"text_completion","created":1,"model":"${model}","choices":[{"index":0,"text":${delta},"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]${usageField}}`;
    const slow = modes.has('slow');
    const firstDelayMs = Number(mode('first-delay-') ?? 0);
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    if (chat) res.write(event(chunk('{"role":"assistant","content":""}', null)));
    if (firstDelayMs > 0) await pause(firstDelayMs);
    let sent = 0;
    for (let i = 0; slow ? !res.destroyed && i < 10_000 : i < words.length; i++) {
      const word = words[i % words.length] ?? '';
      const delta = chat ? JSON.stringify({ content: word }) : JSON.stringify(word);
      res.write(event(chunk(delta, null)));
      sent++;
      if (modes.has('reset-mid') && sent === 2) {
        await pause(5);
        req.socket.destroy();
        return;
      }
      if (slow) await pause(20);
    }
    if (res.destroyed) return;
    res.write(event(chunk(chat ? '{}' : '""', 'length')));
    if (includeUsage) {
      res.write(
        event(
          `{"id":"${id}","object":"${chat ? 'chat.completion.chunk' : 'text_completion'}","created":1,"model":"${model}","choices":[],"usage":${JSON.stringify(usage)}}`,
        ),
      );
    }
    res.end('data: [DONE]\n\n');
  }

  #send(res: ServerResponse, modes: Set<string>, status: number, body: string): void {
    if (modes.has('gzip')) {
      const zipped = zlib.gzipSync(body);
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
        'content-length': zipped.length,
      });
      res.end(zipped);
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}
