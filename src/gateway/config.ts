/**
 * Settings of `tokenscaler gateway`, with every default in one place. The CLI turns flags into an
 * object of this shape and validates it here; tests build it directly.
 */
import { z } from 'zod';
import { ENCODING_NAMES } from '../tokens/encodings.ts';
import { DEFAULT_THRESHOLDS } from '../tokens/findings.ts';
import { ModelProfilesFileSchema } from '../tokens/model-profiles.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Parses `host:port`, `:port` (all interfaces), `port`, or `[v6]:port`. Worked examples:
 * ":9464" -> {host: "0.0.0.0", port: 9464}; "[::1]:8080" -> {host: "::1", port: 8080}.
 */
export function parseListenAddress(raw: string): ListenAddress | undefined {
  const text = raw.trim();
  let host: string;
  let portText: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text);
  if (v6 !== null) {
    host = v6[1] ?? '';
    portText = v6[2] ?? '';
  } else if (/^\d+$/.test(text)) {
    host = '0.0.0.0';
    portText = text;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) return undefined;
    host = text.slice(0, colon) || '0.0.0.0';
    portText = text.slice(colon + 1);
    if (host.includes(':') || !/^[A-Za-z0-9.-]+$/.test(host)) return undefined;
  }
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  return port <= 65_535 ? { host, port } : undefined;
}

const ListenAddressSchema = z.string().transform((raw, ctx) => {
  const parsed = parseListenAddress(raw);
  if (parsed === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected host:port, :port or [ipv6]:port with a port up to 65535',
    });
    return z.NEVER;
  }
  return parsed;
});

const seconds = (max: number) => z.number().positive().max(max);

export const STREAM_USAGE_MODES = ['passthrough', 'inject'] as const;

export const GatewayConfigSchema = z
  .object({
    /** Base URL of the OpenAI-compatible server; its path, if any, prefixes every proxied path. */
    upstream: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
    listen: ListenAddressSchema.prefault('0.0.0.0:8080'),
    /** /metrics, /healthz and /readyz; never on the proxied port (engines have a /metrics of their own). */
    metricsListen: ListenAddressSchema.prefault('0.0.0.0:9464'),
    /** Request bodies above this get 413 (base64 images make chat bodies large). */
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .max(2 ** 30)
      .default(32 * 2 ** 20),
    /** Request headers above this get 431. */
    maxHeaderBytes: z
      .number()
      .int()
      .min(1024)
      .max(2 ** 20)
      .default(16 * 1024),
    connectTimeoutSeconds: seconds(600).default(10),
    /** Until the upstream's response headers: queueing plus, for non-streaming requests, the whole generation. */
    responseTimeoutSeconds: seconds(86_400).default(600),
    /** Longest silence between two chunks of an upstream response. */
    idleTimeoutSeconds: seconds(86_400).default(300),
    /** Whole request, first byte to last. */
    requestTimeoutSeconds: seconds(86_400).default(3600),
    /** Receiving the client's request (headers and body). */
    bodyTimeoutSeconds: seconds(3600).default(60),
    /** On SIGTERM: how long in-flight requests may finish before connections are closed. */
    drainTimeoutSeconds: z.number().min(0).max(3600).default(30),
    /** Upstream connections kept per gateway (0 = no limit). */
    maxUpstreamSockets: z.number().int().min(0).max(100_000).default(0),
    /** Policy (off by default): lower max_tokens / max_completion_tokens / max_output_tokens to this. */
    maxTokensCap: z.number().int().min(1).optional(),
    /** Policy (off by default): reject prompts over this many tokens with 400. */
    maxPromptTokens: z.number().int().min(1).optional(),
    /**
     * `inject` adds stream_options.include_usage to streaming chat and completions requests that did
     * not ask for it, and removes the usage chunk and `"usage":null` fields before the client sees
     * them, so output counts come from the upstream. `passthrough` (default) never alters bytes.
     */
    streamUsage: z.enum(STREAM_USAGE_MODES).default('passthrough'),
    /** Expected output when a request has no limit and the model has too few observations for a P95. */
    defaultOutputTokens: z.number().int().min(0).default(1024),
    /** Observations of a model's output before its P95 replaces defaultOutputTokens. */
    minOutputObservations: z.number().int().min(1).default(20),
    /** Model label allow-list; other models are labelled "other". Without it, the first maxModelLabels seen. */
    models: z.array(z.string().min(1)).optional(),
    maxModelLabels: z.number().int().min(1).max(1000).default(20),
    /** Segment count cache entries (about 150 bytes each). */
    countCacheEntries: z.number().int().min(0).max(10_000_000).default(10_000),
    defaultEncoding: z.enum(ENCODING_NAMES).default('o200k_base'),
    modelProfiles: ModelProfilesFileSchema.default({ models: [] }),
    systemPromptThresholdTokens: z.number().int().min(1).default(DEFAULT_THRESHOLDS.systemPromptTokens),
    jsonFractionThreshold: z.number().min(0).max(1).default(DEFAULT_THRESHOLDS.jsonFraction),
    replayMinTurns: z.number().int().min(1).default(DEFAULT_THRESHOLDS.replayMinTurns),
    /** Responses larger than this are passed through but not parsed for usage. */
    maxParseBytes: z
      .number()
      .int()
      .min(1024)
      .default(16 * 2 ** 20),
  })
  .strict();

export type GatewayConfigInput = z.input<typeof GatewayConfigSchema>;
export type GatewayConfig = z.output<typeof GatewayConfigSchema>;
