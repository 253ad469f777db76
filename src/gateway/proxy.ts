/**
 * The reverse proxy: node:http in, node:http/https out, streams end to end. Request bodies of the
 * metered endpoints are read whole (bounded by maxBodyBytes) because the prompt must be parsed;
 * responses are written to the client chunk by chunk as they arrive, never buffered, while a copy
 * is read for usage and output. Nothing is altered unless a policy says so.
 *
 * Lifecycle of a metered request: read body -> parse -> policies that change the body -> count the
 * prompt (before forwarding only when --max-prompt-tokens needs the answer; otherwise while the
 * upstream works) -> forward -> stream the response -> settle the counts (upstream usage wins) ->
 * record metrics -> release the in-flight tally. Whatever ends the request (completion, client
 * disconnect, upstream error, timeout), `settle` runs once and the tally is released.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import zlib from 'node:zlib';
import {
  describeRequest,
  type EndpointKind,
  endpointKind,
  PROMPT_COMPONENTS,
  type PromptAnatomy,
} from '../tokens/anatomy.ts';
import type { TokenizerRegistry } from '../tokens/encodings.ts';
import { findDiscipline } from '../tokens/findings.ts';
import type { ModelProfile, ModelProfiles } from '../tokens/model-profiles.ts';
import { countPrompt, emptyComponents, type PromptCount, scaleComponents } from '../tokens/prompt-count.ts';
import type { TokenCounter } from '../tokens/token-counter.ts';
import type { GatewayConfig } from './config.ts';
import { InflightTally } from './inflight.ts';
import { type GatewayMetrics, OUTPUT_COMPONENT } from './metrics.ts';
import type { ModelLabeler } from './model-labels.ts';
import type { OutputStats } from './output-stats.ts';
import { type ObservedResponse, ResponseObserver, SseSplitter, UsageStripper } from './response-observer.ts';

export interface GatewayLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface ProxyDeps {
  config: GatewayConfig;
  metrics: GatewayMetrics;
  tokenizers: TokenizerRegistry;
  counter: TokenCounter;
  profiles: ModelProfiles;
  labeler: ModelLabeler;
  outputStats: OutputStats;
  logger: GatewayLogger;
  /** Monotonic milliseconds (durations). */
  nowMs: () => number;
}

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus Host. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
]);

/** OpenAI-style error body, the shape clients of these APIs already parse. */
export function errorBody(message: string, type: string, code: string, param: string | null = null): string {
  return JSON.stringify({ error: { message, type, code, param } });
}

function sendError(res: ServerResponse, status: number, body: string, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  };
  if (close) headers['connection'] = 'close';
  res.writeHead(status, headers);
  res.end(body);
}

/** Forwardable headers as a flat raw list (keeps case, order and repeated headers such as set-cookie). */
function forwardHeaders(raw: readonly string[], drop: ReadonlySet<string>): string[] {
  const connectionListed = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]?.toLowerCase() === 'connection') {
      for (const token of (raw[i + 1] ?? '').split(',')) connectionListed.add(token.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || drop.has(lower) || connectionListed.has(lower)) continue;
    out.push(name, raw[i + 1] ?? '');
  }
  return out;
}

type EndpointLabel = EndpointKind | 'other';

interface Exchange {
  started: number;
  kind: EndpointKind | undefined;
  endpoint: EndpointLabel;
  model: string;
  tally: InflightTally | undefined;
  anatomy: PromptAnatomy | undefined;
  profile: ModelProfile | undefined;
  prompt: Promise<PromptCount | undefined> | undefined;
  expectedOutput: number;
  streaming: boolean;
  stripUsage: boolean;
  status: number;
  upstreamRequest: http.ClientRequest | undefined;
  settled: boolean;
  timers: NodeJS.Timeout[];
}

/** Why an upstream exchange failed, for the error metric and the status sent to the client. */
type FailureReason = 'connect' | 'timeout' | 'reset';

class UpstreamFailure extends Error {
  readonly reason: FailureReason;
  constructor(reason: FailureReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpstreamFailure';
    this.reason = reason;
  }
}

export class MeteringProxy {
  readonly #deps: ProxyDeps;
  readonly #upstream: URL;
  readonly #basePath: string;
  readonly #agent: http.Agent;
  readonly #client: typeof http | typeof https;
  readonly #active = new Set<Exchange>();

  constructor(deps: ProxyDeps) {
    this.#deps = deps;
    this.#upstream = new URL(deps.config.upstream);
    this.#basePath = this.#upstream.pathname.replace(/\/+$/, '');
    const secure = this.#upstream.protocol === 'https:';
    this.#client = secure ? https : http;
    const agentOptions = {
      keepAlive: true,
      maxSockets:
        deps.config.maxUpstreamSockets === 0 ? Number.POSITIVE_INFINITY : deps.config.maxUpstreamSockets,
    };
    this.#agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /** Requests still being handled (for draining on shutdown). */
  get activeRequests(): number {
    return this.#active.size;
  }

  close(): void {
    this.#agent.destroy();
  }

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const kind = req.method === 'POST' ? endpointKind(req.url ?? '/') : undefined;
    const ex: Exchange = {
      started: this.#deps.nowMs(),
      kind,
      endpoint: kind ?? 'other',
      model: 'unknown',
      tally: undefined,
      anatomy: undefined,
      profile: undefined,
      prompt: undefined,
      expectedOutput: 0,
      streaming: false,
      stripUsage: false,
      status: 0,
      upstreamRequest: undefined,
      settled: false,
      timers: [],
    };
    this.#active.add(ex);
    res.on('close', () => {
      if (!res.writableFinished && !ex.settled) {
        // The client went away first: cancel the upstream request so the engine stops generating.
        ex.upstreamRequest?.destroy();
        if (ex.tally !== undefined) this.#deps.metrics.clientCancellations.inc({ model: ex.model });
        void this.#settle(ex, undefined);
      }
    });
    if (kind === undefined) {
      this.#forward(ex, req, res, undefined);
      return;
    }
    void this.#metered(ex, kind, req, res).catch((error: unknown) => {
      this.#deps.logger.error('request failed', { error });
      sendError(res, 502, errorBody('gateway error', 'gateway_error', 'gateway_error'));
      void this.#settle(ex, undefined);
    });
  };

  async #metered(ex: Exchange, kind: EndpointKind, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { config } = this.#deps;
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > config.maxBodyBytes) {
      this.#tooLarge(ex, req, res);
      return;
    }
    const body = await readBody(req, config.maxBodyBytes);
    if (body === 'too-large') {
      this.#tooLarge(ex, req, res);
      return;
    }
    if (body === 'aborted') {
      void this.#settle(ex, undefined);
      return;
    }
    let forwardBody: Buffer = body;
    const encoded = (req.headers['content-encoding'] ?? 'identity') !== 'identity';
    const json = encoded ? undefined : parseJson(body);
    const anatomy = json === undefined ? undefined : describeRequest(kind, json);
    ex.anatomy = anatomy;
    ex.model = this.#deps.labeler.label(anatomy?.model);
    ex.streaming = anatomy?.stream === true;
    ex.tally = new InflightTally(this.#deps.metrics, ex.model);
    if (anatomy !== undefined && json !== undefined) {
      const changed = this.#applyBodyPolicies(ex, anatomy, json as Record<string, unknown>);
      if (changed) forwardBody = Buffer.from(JSON.stringify(json));
      ex.profile = this.#deps.profiles.resolve(anatomy.model);
      ex.expectedOutput = this.#expectedOutput(ex.model, anatomy);
      ex.prompt = this.#countPrompt(ex, anatomy, ex.profile);
      if (config.maxPromptTokens !== undefined) {
        const count = await ex.prompt;
        if (count !== undefined && count.totalTokens > config.maxPromptTokens) {
          this.#deps.metrics.policyActions.inc({ model: ex.model, policy: 'prompt-rejected' });
          ex.status = 400;
          sendError(
            res,
            400,
            errorBody(
              `prompt is ${count.totalTokens} tokens (${count.encoding}), over this gateway's limit of ${config.maxPromptTokens} tokens (--max-prompt-tokens); shorten the prompt`,
              'invalid_request_error',
              'prompt_too_long',
              kind === 'chat' ? 'messages' : kind === 'responses' ? 'input' : 'prompt',
            ),
          );
          void this.#settle(ex, undefined);
          return;
        }
      }
      if (ex.settled) return;
    }
    ex.profile ??= this.#deps.profiles.resolve(undefined);
    this.#forward(ex, req, res, forwardBody);
  }

  /** Policies that edit the request body; true when the body changed. */
  #applyBodyPolicies(ex: Exchange, anatomy: PromptAnatomy, body: Record<string, unknown>): boolean {
    const { config, metrics } = this.#deps;
    let changed = false;
    const cap = config.maxTokensCap;
    if (cap !== undefined && anatomy.kind !== 'embeddings') {
      if (anatomy.maxOutputTokens === undefined || anatomy.maxOutputTokens > cap) {
        const field =
          anatomy.kind === 'responses'
            ? 'max_output_tokens'
            : anatomy.kind === 'chat' && body['max_completion_tokens'] !== undefined
              ? 'max_completion_tokens'
              : 'max_tokens';
        body[field] = cap;
        if (
          field === 'max_completion_tokens' &&
          typeof body['max_tokens'] === 'number' &&
          body['max_tokens'] > cap
        ) {
          body['max_tokens'] = cap;
        }
        anatomy.maxOutputTokens = cap;
        metrics.policyActions.inc({ model: ex.model, policy: 'max-tokens-capped' });
        changed = true;
      }
    }
    if (
      config.streamUsage === 'inject' &&
      anatomy.stream &&
      !anatomy.streamIncludeUsage &&
      (anatomy.kind === 'chat' || anatomy.kind === 'completions')
    ) {
      const options = body['stream_options'];
      body['stream_options'] = {
        ...(options !== null && typeof options === 'object' ? options : {}),
        include_usage: true,
      };
      ex.stripUsage = true;
      metrics.policyActions.inc({ model: ex.model, policy: 'stream-usage-injected' });
      changed = true;
    }
    return changed;
  }

  /**
   * Output the request is expected to generate: its limit when it sets one; else the P95 output of
   * its model over recent requests once there are enough of them; else the configured default.
   * Times `n` choices. Worked example: n = 2 with max_tokens = 300 expects 600 output tokens.
   */
  #expectedOutput(model: string, anatomy: PromptAnatomy): number {
    const { config, outputStats } = this.#deps;
    let perChoice = anatomy.maxOutputTokens;
    if (perChoice === undefined) {
      perChoice =
        outputStats.count(model) >= config.minOutputObservations
          ? (outputStats.p95(model) ?? config.defaultOutputTokens)
          : config.defaultOutputTokens;
    }
    return perChoice * anatomy.choices;
  }

  async #countPrompt(
    ex: Exchange,
    anatomy: PromptAnatomy,
    profile: ModelProfile,
  ): Promise<PromptCount | undefined> {
    const { tokenizers, counter, config, metrics, logger } = this.#deps;
    try {
      const tokenizer = tokenizers.loaded(profile.encoding) ?? (await tokenizers.load(profile.encoding));
      const count = await countPrompt(anatomy, profile, tokenizer, counter);
      ex.tally?.setPrompt(count.totalTokens, ex.expectedOutput);
      const findings = await findDiscipline(anatomy, count, tokenizer, counter, {
        systemPromptTokens: config.systemPromptThresholdTokens,
        jsonFraction: config.jsonFractionThreshold,
        replayMinTurns: config.replayMinTurns,
        replayHistoryFraction: 0.5,
      });
      for (const finding of findings) {
        metrics.findings.inc({ model: ex.model, finding: finding.code });
        if (finding.savingTokens !== undefined && finding.code === 'json-heavy-prompt') {
          metrics.jsonMinifySavingTokens.inc({ model: ex.model }, finding.savingTokens);
        }
      }
      return count;
    } catch (error) {
      logger.warn('prompt count failed; the request is forwarded without an estimate', { error });
      return undefined;
    }
  }

  #tooLarge(ex: Exchange, req: IncomingMessage, res: ServerResponse): void {
    ex.status = 413;
    sendError(
      res,
      413,
      errorBody(
        `request body is larger than this gateway's limit of ${this.#deps.config.maxBodyBytes} bytes (--max-body-bytes)`,
        'invalid_request_error',
        'request_too_large',
      ),
      true,
    );
    // The rest of the body is not read; close the connection once the response is out.
    res.once('finish', () => req.socket.destroySoon());
    void this.#settle(ex, undefined);
  }

  #forward(ex: Exchange, req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): void {
    const { config } = this.#deps;
    const drop = new Set<string>();
    if (body !== undefined) drop.add('content-length');
    // The usage chunk is removed from the SSE text, so ask for an uncompressed stream.
    if (ex.stripUsage) drop.add('accept-encoding');
    const headers = forwardHeaders(req.rawHeaders, drop);
    headers.push('host', this.#upstream.host);
    if (body !== undefined) headers.push('content-length', String(body.length));
    const upstreamRequest = this.#client.request({
      protocol: this.#upstream.protocol,
      hostname: this.#upstream.hostname.replace(/^\[|\]$/g, ''),
      port: this.#upstream.port,
      method: req.method,
      path: `${this.#basePath}${req.url ?? '/'}`,
      headers,
      agent: this.#agent,
      setHost: false,
    });
    ex.upstreamRequest = upstreamRequest;
    const fail = (failure: UpstreamFailure) => {
      if (ex.settled) return;
      upstreamRequest.destroy();
      this.#deps.metrics.upstreamErrors.inc({ model: ex.model, reason: failure.reason });
      if (!res.headersSent) {
        ex.status = failure.reason === 'timeout' ? 504 : 502;
        sendError(res, ex.status, errorBody(failure.message, 'upstream_error', `upstream_${failure.reason}`));
      } else {
        // Mid-response: the status is already sent; cut the connection so the client sees the failure.
        res.destroy();
      }
      void this.#settle(ex, undefined);
    };
    const timer = (seconds: number, message: string) => {
      const t = setTimeout(() => fail(new UpstreamFailure('timeout', message)), seconds * 1000);
      ex.timers.push(t);
      return t;
    };
    timer(
      config.requestTimeoutSeconds,
      `request exceeded ${config.requestTimeoutSeconds}s (--request-timeout-seconds)`,
    );
    const responseTimer = timer(
      config.responseTimeoutSeconds,
      `upstream sent no response within ${config.responseTimeoutSeconds}s (--response-timeout-seconds)`,
    );
    upstreamRequest.on('socket', (socket: Socket) => {
      if (!socket.connecting) return;
      const connectTimer = timer(
        config.connectTimeoutSeconds,
        `could not connect to the upstream within ${config.connectTimeoutSeconds}s (--connect-timeout-seconds)`,
      );
      socket.once('connect', () => clearTimeout(connectTimer));
    });
    upstreamRequest.on('error', (error: NodeJS.ErrnoException) => {
      const connectCodes = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'];
      const reason: FailureReason = connectCodes.includes(error.code ?? '') ? 'connect' : 'reset';
      fail(
        new UpstreamFailure(
          reason,
          `upstream ${reason === 'connect' ? 'unreachable' : 'failed'}: ${error.message}`,
        ),
      );
    });
    upstreamRequest.on('response', (upstreamResponse) => {
      clearTimeout(responseTimer);
      // From here on, a silence longer than the idle timeout between two chunks fails the request.
      const idleTimer = timer(
        config.idleTimeoutSeconds,
        `upstream sent nothing for ${config.idleTimeoutSeconds}s (--idle-timeout-seconds)`,
      );
      upstreamResponse.on('data', () => idleTimer.refresh());
      this.#respond(ex, res, upstreamResponse, fail);
    });
    if (body !== undefined) {
      upstreamRequest.end(body);
    } else {
      req.pipe(upstreamRequest);
      req.on('error', () => upstreamRequest.destroy());
    }
  }

  #respond(
    ex: Exchange,
    res: ServerResponse,
    upstreamResponse: IncomingMessage,
    fail: (failure: UpstreamFailure) => void,
  ): void {
    const status = upstreamResponse.statusCode ?? 502;
    ex.status = status;
    const ok = status >= 200 && status < 300;
    const eventStream = (upstreamResponse.headers['content-type'] ?? '').includes('text/event-stream');
    const strip = ex.stripUsage && ok && eventStream;
    const drop = new Set<string>();
    if (strip) drop.add('content-length');
    if (!res.destroyed)
      res.writeHead(
        status,
        upstreamResponse.statusMessage,
        forwardHeaders(upstreamResponse.rawHeaders, drop),
      );
    let observer: ResponseObserver | undefined;
    let decoder: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined;
    if (ex.kind !== undefined && ok) {
      if (!ex.streaming || !eventStream) ex.tally?.firstToken();
      observer = new ResponseObserver({
        kind: ex.kind,
        streaming: eventStream,
        maxBytes: this.#deps.config.maxParseBytes,
        onFirstToken: () => {
          if (ex.tally?.firstTokenSeen !== true && eventStream) {
            this.#deps.metrics.timeToFirstToken.observe(
              { model: ex.model },
              (this.#deps.nowMs() - ex.started) / 1000,
            );
          }
          ex.tally?.firstToken();
        },
        onOutputChunks: (chunks) => ex.tally?.produced(chunks),
      });
      decoder = decompressor(upstreamResponse.headers['content-encoding']);
      if (decoder !== undefined) {
        const o = observer;
        decoder.on('data', (chunk: Buffer) => o.push(chunk));
        decoder.on('error', () => {
          observer = undefined;
        });
      } else if ((upstreamResponse.headers['content-encoding'] ?? 'identity') !== 'identity') {
        observer = undefined; // an encoding we cannot read: pass through, keep the estimate
      }
    } else if (ex.kind !== undefined) {
      ex.tally?.firstToken();
    }
    const splitter = strip ? new SseSplitter() : undefined;
    const stripper = strip ? new UsageStripper() : undefined;
    upstreamResponse.on('data', (chunk: Buffer) => {
      let out: Buffer | string = chunk;
      if (splitter !== undefined && stripper !== undefined) {
        out = '';
        for (const event of splitter.push(chunk)) {
          observer?.event(event);
          out += stripper.transform(event);
        }
      } else if (decoder !== undefined) {
        decoder.write(chunk);
      } else {
        observer?.push(chunk);
      }
      if (res.destroyed || out.length === 0) return;
      if (!res.write(out)) {
        upstreamResponse.pause();
        res.once('drain', () => upstreamResponse.resume());
      }
    });
    upstreamResponse.on('end', () => {
      const finish = () => {
        if (splitter !== undefined && stripper !== undefined) {
          const rest = splitter.rest();
          if (rest.length > 0) {
            observer?.event(rest);
            const out = stripper.transform(rest);
            if (out.length > 0 && !res.destroyed) res.write(out);
          }
        }
        const observed = observer?.end();
        if (!res.destroyed) res.end();
        void this.#settle(ex, observed);
      };
      if (decoder !== undefined) {
        decoder.once('end', finish);
        decoder.once('error', finish);
        decoder.end();
      } else {
        finish();
      }
    });
    upstreamResponse.on('close', () => {
      if (!upstreamResponse.complete)
        fail(new UpstreamFailure('reset', 'upstream closed the response early'));
    });
    upstreamResponse.on('error', () => fail(new UpstreamFailure('reset', 'upstream response failed')));
  }

  /**
   * Ends an exchange once: final counts (upstream usage when reported, else the gateway's count),
   * histograms and counters for successful requests, the request counter for all, and the release
   * of the in-flight tally.
   */
  async #settle(ex: Exchange, observed: ObservedResponse | undefined): Promise<void> {
    if (ex.settled) return;
    ex.settled = true;
    for (const t of ex.timers) clearTimeout(t);
    const { metrics, nowMs, outputStats } = this.#deps;
    const labels = { model: ex.model };
    try {
      const ok = ex.status >= 200 && ex.status < 300;
      if (ok && ex.kind !== undefined) {
        const prompt = ex.prompt === undefined ? undefined : await ex.prompt;
        const reportedInput = observed?.usage?.promptTokens;
        const inputTokens = reportedInput ?? prompt?.totalTokens;
        let outputTokens = ex.kind === 'embeddings' ? 0 : observed?.usage?.completionTokens;
        if (outputTokens === undefined && observed?.outputText !== undefined && ex.profile !== undefined) {
          const { tokenizers, counter } = this.#deps;
          const tokenizer =
            tokenizers.loaded(ex.profile.encoding) ?? (await tokenizers.load(ex.profile.encoding));
          outputTokens = await counter.count(tokenizer, observed.outputText);
        }
        metrics.usageSource.inc({ ...labels, source: reportedInput !== undefined ? 'upstream' : 'gateway' });
        if (inputTokens !== undefined) {
          metrics.requestInputTokens.observe(labels, inputTokens);
          const components =
            reportedInput === undefined || prompt === undefined
              ? prompt?.components
              : scaleComponents(prompt.components, reportedInput);
          const byComponent = components ?? scaleComponents(emptyComponents(), inputTokens);
          for (const component of PROMPT_COMPONENTS) {
            const n = byComponent[component];
            if (n > 0) metrics.tokensTotal.inc({ ...labels, type: 'input', component }, n);
          }
        }
        if (outputTokens !== undefined) {
          if (ex.kind !== 'embeddings') {
            metrics.requestOutputTokens.observe(labels, outputTokens);
            outputStats.observe(ex.model, Math.ceil(outputTokens / (ex.anatomy?.choices ?? 1)));
          }
          if (outputTokens > 0) {
            metrics.tokensTotal.inc({ ...labels, type: 'output', component: OUTPUT_COMPONENT }, outputTokens);
            if (inputTokens !== undefined)
              metrics.inputOutputRatio.observe(labels, inputTokens / outputTokens);
          }
        }
      }
      metrics.requestDuration.observe(labels, (nowMs() - ex.started) / 1000);
      metrics.requestsTotal.inc({ ...labels, endpoint: ex.endpoint, code: String(ex.status) });
    } finally {
      ex.tally?.finish();
      this.#active.delete(ex);
    }
  }
}

function decompressor(
  encoding: string | undefined,
): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return undefined;
  }
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Reads a request body up to a limit. */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | 'too-large' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: Buffer | 'too-large' | 'aborted') => {
      if (done) return;
      done = true;
      req.off('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.pause();
        finish('too-large');
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish(Buffer.concat(chunks, size)));
    req.once('error', () => finish('aborted'));
    req.once('close', () => {
      if (!req.complete) finish('aborted');
    });
  });
}
