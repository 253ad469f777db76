import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { describeIssues } from '../config/format-issues.ts';
import { InvalidInputError, TokenscalerError } from '../errors.ts';
import { type GatewayConfigInput, GatewayConfigSchema, STREAM_USAGE_MODES } from '../gateway/config.ts';
import { Gateway } from '../gateway/gateway.ts';
import { createJsonLogger, type LogLevel } from '../telemetry/logger.ts';
import { ENCODING_NAMES } from '../tokens/encodings.ts';
import { ModelProfilesFileSchema } from '../tokens/model-profiles.ts';
import { type CommandHandler, EXIT_OK } from './command.ts';
import { parseEnumFlag, parseFlags, parseNumberFlag } from './flags.ts';

const HELP = `usage: tokenscaler gateway --upstream URL [--listen ADDR] [--metrics-listen ADDR] [flags]

Token-metering reverse proxy for an OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp,
Ollama, a hosted API). Counts prompt tokens by component on /v1/chat/completions,
/v1/completions, /v1/responses and /v1/embeddings, passes every other path through, streams
responses chunk by chunk, and serves its metrics on a separate port.

  --upstream URL                  the server to forward to (http:// or https://; a path prefixes every request)
  --listen ADDR                   proxy address, host:port or :port (default 0.0.0.0:8080)
  --metrics-listen ADDR           /metrics, /healthz, /readyz (default 0.0.0.0:9464)

limits and timeouts
  --max-body-bytes N              larger request bodies get 413 (default 33554432)
  --max-header-bytes N            larger request headers get 431 (default 16384)
  --connect-timeout-seconds S     connecting to the upstream (default 10)
  --response-timeout-seconds S    until the upstream's response headers (default 600)
  --idle-timeout-seconds S        longest silence inside a response (default 300)
  --request-timeout-seconds S     a whole request (default 3600)
  --body-timeout-seconds S        receiving a client's request (default 60)
  --drain-timeout-seconds S       on SIGTERM, time for in-flight requests to finish (default 30)
  --max-upstream-sockets N        upstream connections (default 0 = no limit)

token accounting
  --default-encoding E            encoding for models without a known one: ${ENCODING_NAMES.join(', ')} (default o200k_base)
  --model-profiles FILE           YAML/JSON per-model overrides: encoding, chat template, image tiles
  --default-output-tokens N       expected output without a request limit or a P95 yet (default 1024)
  --models A,B,...                model label allow-list (others are labelled "other")
  --max-model-labels N            without an allow-list, the first N models seen get a label (default 20)
  --count-cache-entries N         segment count cache size (default 10000)
  --system-prompt-threshold-tokens N  large-system-prompt finding above this (default 2048)
  --json-fraction-threshold F     json-heavy-prompt finding from this share of the prompt (default 0.5)
  --replay-min-turns N            conversation-replay finding from this many earlier turns (default 4)

policies (all off by default)
  --max-tokens-cap N              lower max_tokens (or max_completion_tokens, max_output_tokens) to N
  --max-prompt-tokens N           reject prompts over N tokens with 400
  --stream-usage passthrough|inject   inject: ask streaming upstreams for usage and strip it from
                                  the client's stream (default passthrough: bytes never altered)

  --log-level debug|info|warn|error
`;

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** Config keys as the flags that set them, so validation errors name the flag. */
function flagName(key: PropertyKey | undefined): string {
  const name = String(key ?? 'flags');
  return `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export const runGateway: CommandHandler = async (args, io) => {
  const { values } = parseFlags(args, {
    upstream: { type: 'string' },
    listen: { type: 'string' },
    'metrics-listen': { type: 'string' },
    'max-body-bytes': { type: 'string' },
    'max-header-bytes': { type: 'string' },
    'connect-timeout-seconds': { type: 'string' },
    'response-timeout-seconds': { type: 'string' },
    'idle-timeout-seconds': { type: 'string' },
    'request-timeout-seconds': { type: 'string' },
    'body-timeout-seconds': { type: 'string' },
    'drain-timeout-seconds': { type: 'string' },
    'max-upstream-sockets': { type: 'string' },
    'default-encoding': { type: 'string' },
    'model-profiles': { type: 'string' },
    'default-output-tokens': { type: 'string' },
    models: { type: 'string' },
    'max-model-labels': { type: 'string' },
    'count-cache-entries': { type: 'string' },
    'system-prompt-threshold-tokens': { type: 'string' },
    'json-fraction-threshold': { type: 'string' },
    'replay-min-turns': { type: 'string' },
    'max-tokens-cap': { type: 'string' },
    'max-prompt-tokens': { type: 'string' },
    'stream-usage': { type: 'string' },
    'log-level': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    io.stdout(HELP);
    return EXIT_OK;
  }
  if (values.upstream === undefined) {
    throw new InvalidInputError('--upstream', 'is required: the base URL of the OpenAI-compatible server');
  }
  const int = (flag: keyof typeof values, min: number, max: number) =>
    parseNumberFlag(flag, values[flag] as string | undefined, { min, max, integer: true });
  const secondsFlag = (flag: keyof typeof values, max: number) =>
    parseNumberFlag(flag, values[flag] as string | undefined, { min: 0, max, exclusiveMin: true });
  const input: GatewayConfigInput = {
    upstream: values.upstream,
    listen: values.listen,
    metricsListen: values['metrics-listen'],
    maxBodyBytes: int('max-body-bytes', 1024, 2 ** 30),
    maxHeaderBytes: int('max-header-bytes', 1024, 2 ** 20),
    connectTimeoutSeconds: secondsFlag('connect-timeout-seconds', 600),
    responseTimeoutSeconds: secondsFlag('response-timeout-seconds', 86_400),
    idleTimeoutSeconds: secondsFlag('idle-timeout-seconds', 86_400),
    requestTimeoutSeconds: secondsFlag('request-timeout-seconds', 86_400),
    bodyTimeoutSeconds: secondsFlag('body-timeout-seconds', 3600),
    drainTimeoutSeconds: parseNumberFlag('drain-timeout-seconds', values['drain-timeout-seconds'], {
      min: 0,
      max: 3600,
    }),
    maxUpstreamSockets: int('max-upstream-sockets', 0, 100_000),
    defaultEncoding: parseEnumFlag('default-encoding', values['default-encoding'], ENCODING_NAMES),
    defaultOutputTokens: int('default-output-tokens', 0, 10_000_000),
    models: values.models
      ?.split(',')
      .map((m) => m.trim())
      .filter((m) => m.length > 0),
    maxModelLabels: int('max-model-labels', 1, 1000),
    countCacheEntries: int('count-cache-entries', 0, 10_000_000),
    systemPromptThresholdTokens: int('system-prompt-threshold-tokens', 1, 10_000_000),
    jsonFractionThreshold: parseNumberFlag('json-fraction-threshold', values['json-fraction-threshold'], {
      min: 0,
      max: 1,
    }),
    replayMinTurns: int('replay-min-turns', 1, 10_000),
    maxTokensCap: int('max-tokens-cap', 1, 10_000_000),
    maxPromptTokens: int('max-prompt-tokens', 1, 100_000_000),
    streamUsage: parseEnumFlag('stream-usage', values['stream-usage'], STREAM_USAGE_MODES),
    modelProfiles:
      values['model-profiles'] === undefined
        ? undefined
        : await loadProfiles(resolve(io.cwd, values['model-profiles'])),
  };
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const parsed = GatewayConfigSchema.safeParse(defined);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new InvalidInputError(flagName(first?.path[0]), describeIssues(parsed.error.issues, defined), {
      cause: parsed.error,
    });
  }
  const logger = createJsonLogger({
    write: io.stderr,
    nowMs: io.nowMs,
    level: parseEnumFlag('log-level', values['log-level'], LOG_LEVELS) as LogLevel | undefined,
    fields: { component: 'gateway' },
  });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const gateway = new Gateway({ config: parsed.data, logger, registry });
  try {
    await gateway.start();
  } catch (error) {
    await gateway.stop().catch(() => undefined);
    throw new TokenscalerError('LISTEN_FAILED', `cannot start: ${(error as Error).message}`, {
      cause: error,
    });
  }
  await new Promise<void>((done) => {
    if (io.signal.aborted) done();
    else io.signal.addEventListener('abort', () => done(), { once: true });
  });
  logger.info('stopping: draining in-flight requests', {
    drainTimeoutSeconds: parsed.data.drainTimeoutSeconds,
  });
  await gateway.stop();
  return EXIT_OK;
};

async function loadProfiles(path: string): Promise<z.output<typeof ModelProfilesFileSchema>> {
  let raw: unknown;
  try {
    raw = parseYaml(await readFile(path, 'utf8'));
  } catch (error) {
    throw new InvalidInputError('--model-profiles', `cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const parsed = ModelProfilesFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InvalidInputError('--model-profiles', `${path}: ${describeIssues(parsed.error.issues, raw)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}
