/**
 * @module HTTP with a deadline and a bounded body, for scrapes and Prometheus queries. `fetch` is
 * injected (the composition root passes globalThis.fetch; tests pass fakes or hit loopback servers).
 * A body larger than the limit is cut off as soon as the limit is crossed: a 50 MB answer costs at
 * most `maxBytes` of memory, never the whole body.
 */
import { MetricsSourceError, type SourceErrorCode } from './errors.ts';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface BoundedFetchOptions {
  fetch: FetchLike;
  timeoutSeconds: number;
  maxBytes: number;
  /** Aborts the request when the caller gives up (shutdown); distinct from the deadline. */
  signal?: AbortSignal | undefined;
  init?: RequestInit;
  /** Codes to raise on network failure and on deadline: SCRAPE_* or PROMETHEUS_*. */
  failure: Extract<SourceErrorCode, 'SCRAPE_FAILED' | 'PROMETHEUS_UNREACHABLE'>;
  timeout: Extract<SourceErrorCode, 'SCRAPE_TIMEOUT' | 'PROMETHEUS_TIMEOUT'>;
  /** Code for a body over maxBytes or not UTF-8: EXPOSITION_* for scrapes, PROMETHEUS_BAD_RESPONSE for queries. */
  tooLarge: Extract<SourceErrorCode, 'EXPOSITION_LIMIT' | 'PROMETHEUS_BAD_RESPONSE'>;
  malformed: Extract<SourceErrorCode, 'EXPOSITION_MALFORMED' | 'PROMETHEUS_BAD_RESPONSE'>;
  /** Names the target in messages (the URL without credentials). */
  target: string;
}

export interface BoundedResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly contentType: string | null;
  readonly text: string;
}

export async function boundedFetch(url: string, options: BoundedFetchOptions): Promise<BoundedResponse> {
  const deadline = AbortSignal.timeout(Math.max(1, Math.round(options.timeoutSeconds * 1000)));
  const signal = options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]);
  const { target } = options;
  try {
    const response = await options.fetch(url, { ...options.init, signal });
    const declared = Number(response.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      await response.body?.cancel().catch(() => undefined);
      throw tooLarge(options.tooLarge, target, options.maxBytes, `declares ${declared} bytes`);
    }
    const bytes = await readLimited(response, options.maxBytes, target, options.tooLarge);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (error) {
      throw new MetricsSourceError(options.malformed, `${target}: body is not valid UTF-8`, {
        cause: error,
        target,
      });
    }
    return {
      status: response.status,
      ok: response.ok,
      contentType: response.headers.get('content-type'),
      text,
    };
  } catch (error) {
    if (error instanceof MetricsSourceError) throw error;
    if (options.signal?.aborted) {
      throw new MetricsSourceError('ABORTED', `${target}: aborted`, { cause: error, target });
    }
    if (deadline.aborted) {
      throw new MetricsSourceError(
        options.timeout,
        `${target}: no answer within ${options.timeoutSeconds} s`,
        {
          cause: error,
          target,
        },
      );
    }
    throw new MetricsSourceError(options.failure, `${target}: ${describeNetworkError(error)}`, {
      cause: error,
      target,
    });
  }
}

async function readLimited(
  response: Response,
  maxBytes: number,
  target: string,
  code: BoundedFetchOptions['tooLarge'],
): Promise<Uint8Array> {
  const body = response.body;
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(code, target, maxBytes, `sent more than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function tooLarge(
  code: BoundedFetchOptions['tooLarge'],
  target: string,
  maxBytes: number,
  detail: string,
): MetricsSourceError {
  return new MetricsSourceError(
    code,
    `${target}: body too large (${detail}; the limit is ${maxBytes} bytes)`,
    { target },
  );
}

/** fetch() failures hide the reason in `cause` (ECONNREFUSED, ENOTFOUND, certificate errors). */
export function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' ? `${code} (${cause.message})` : cause.message;
  }
  return error.message;
}

/** The URL as it may appear in messages and logs: user info removed. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}
