import { z } from 'zod';
import { InvalidInputError } from '../errors.ts';
import { createRandom, exponential } from './prng.ts';

/**
 * Request traces: the `arrival_s,input_tokens,output_tokens` CSV of ../shared/data/traces/ (and any
 * other file in that format), and length-only files (`num_prefill_tokens,num_decode_tokens,...`)
 * that get a synthetic Poisson arrival process. Pure: the caller reads the file.
 */

export interface TraceRequest {
  arrivalSeconds: number;
  inputTokens: number;
  outputTokens: number;
}

export interface Trace {
  name: string;
  requests: TraceRequest[];
  /** How the arrivals and the load came about, in words (for reports). */
  description: string;
  notes: string[];
}

export type ParsedTraceFile =
  | { kind: 'timed'; requests: TraceRequest[]; notes: string[] }
  | { kind: 'lengths'; lengths: { inputTokens: number; outputTokens: number }[]; notes: string[] };

const timedRowSchema = z.object({
  arrival_s: z.number().finite().nonnegative(),
  input_tokens: z.number().int().nonnegative(),
  output_tokens: z.number().int().nonnegative(),
});

const lengthRowSchema = z.object({
  num_prefill_tokens: z.number().int().nonnegative(),
  num_decode_tokens: z.number().int().nonnegative(),
});

/**
 * Parses a trace CSV. The header picks the format; columns may come in any order and extra columns
 * are ignored. A request of 0 input or output tokens (BurstGPT logs failed calls that way) is
 * counted as 1 token, since an engine always prefills at least one token and emits at least one,
 * and the notes say how many rows that touched. Unsorted arrivals are sorted (stable).
 */
export function parseTraceCsv(text: string, field = '--trace'): ParsedTraceFile {
  const lines = text.split(/\r?\n/);
  const headerLine = lines[0]?.trim() ?? '';
  const header = headerLine.split(',').map((h) => h.trim());
  const column = (name: string) => header.indexOf(name);
  const timed = ['arrival_s', 'input_tokens', 'output_tokens'];
  const lengthsOnly = ['num_prefill_tokens', 'num_decode_tokens'];
  const isTimed = timed.every((c) => column(c) >= 0);
  const isLengths = !isTimed && lengthsOnly.every((c) => column(c) >= 0);
  if (!isTimed && !isLengths) {
    throw new InvalidInputError(
      field,
      `header ${JSON.stringify(headerLine.slice(0, 80))} is not a trace header; expected columns ${timed.join(',')} (or ${lengthsOnly.join(',')} for a length-only file)`,
    );
  }
  const names = isTimed ? timed : lengthsOnly;
  const indexes = names.map(column);
  const schema = isTimed ? timedRowSchema : lengthRowSchema;
  let clamped = 0;
  const rows: Record<string, number>[] = [];
  for (let lineNo = 1; lineNo < lines.length; lineNo++) {
    const line = lines[lineNo] as string;
    if (line.trim() === '') continue;
    const cells = line.split(',');
    const raw: Record<string, number> = {};
    names.forEach((name, i) => {
      const cell = cells[indexes[i] as number]?.trim() ?? '';
      raw[name] = cell === '' ? Number.NaN : Number(cell);
    });
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const key = String(issue?.path[0] ?? names[0]);
      const cell = cells[indexes[names.indexOf(key)] as number]?.trim();
      throw new InvalidInputError(
        field,
        `line ${lineNo + 1}: ${key} ${JSON.stringify(cell ?? '')} is not allowed; expected ${key === 'arrival_s' ? 'a number of seconds >= 0' : 'a whole number of tokens >= 0'}`,
      );
    }
    rows.push(raw);
  }
  if (rows.length === 0) throw new InvalidInputError(field, 'the trace has a header but no requests');
  const tokens = (n: number) => {
    if (n >= 1) return n;
    clamped++;
    return 1;
  };
  const notes: string[] = [];
  if (isTimed) {
    const requests = rows.map((r) => ({
      arrivalSeconds: r['arrival_s'] as number,
      inputTokens: tokens(r['input_tokens'] as number),
      outputTokens: tokens(r['output_tokens'] as number),
    }));
    let sorted = true;
    for (let i = 1; i < requests.length; i++) {
      if ((requests[i] as TraceRequest).arrivalSeconds < (requests[i - 1] as TraceRequest).arrivalSeconds) {
        sorted = false;
        break;
      }
    }
    if (!sorted) {
      requests.sort((a, b) => a.arrivalSeconds - b.arrivalSeconds);
      notes.push('arrivals were not sorted; sorted by arrival_s');
    }
    // Arrivals relative to the first request, as the shipped traces are.
    const first = (requests[0] as TraceRequest).arrivalSeconds;
    if (first !== 0) for (const r of requests) r.arrivalSeconds -= first;
    if (clamped > 0) notes.push(`${clamped} token counts of 0 were counted as 1`);
    return { kind: 'timed', requests, notes };
  }
  const lengths = rows.map((r) => ({
    inputTokens: tokens(r['num_prefill_tokens'] as number),
    outputTokens: tokens(r['num_decode_tokens'] as number),
  }));
  if (clamped > 0) notes.push(`${clamped} token counts of 0 were counted as 1`);
  return { kind: 'lengths', lengths, notes };
}

export type LoadMethod = 'overlay' | 'compress';

export interface ShapeOptions {
  name: string;
  loadMultiplier: number;
  loadMethod: LoadMethod;
  seed: number;
  /** Length-only files: requests per second of the synthetic Poisson process (before the multiplier). */
  arrivalRatePerSecond?: number;
  /** Length-only files: seconds of synthetic arrivals. */
  durationSeconds?: number;
}

/**
 * Turns a parsed file into the request stream to replay, applying the load multiplier.
 *
 * - `overlay` (default): floor(m) copies of the trace, copy 0 as recorded and each other copy
 *   circularly shifted by a seeded random offset within the trace span, plus a thinned copy for the
 *   fractional part (each request kept with probability m - floor(m)). The span and the shape of
 *   each burst stay as recorded; bursts of different copies land at different times. m < 1 thins.
 * - `compress`: arrival times divided by m. Bursts get m times sharper and the trace m times shorter.
 *
 * Example: m = 2.5 on a 3,436 s trace -> copy 0, copy 1 shifted by (say) 1,210 s (a request at
 * 3,000 s lands at 774 s), and half of a third copy shifted by another offset.
 */
export function shapeTrace(file: ParsedTraceFile, options: ShapeOptions): Trace {
  const m = options.loadMultiplier;
  if (!(m > 0) || !Number.isFinite(m)) {
    throw new InvalidInputError('--load-multiplier', `${m} is not allowed; expected a number > 0`);
  }
  if (file.kind === 'lengths') return synthesize(file, options);
  const base = file.requests;
  const last = (base[base.length - 1] as TraceRequest).arrivalSeconds;
  // The span a circular shift wraps over: the last arrival plus one mean gap, so the wrap point
  // does not stack two requests on the same instant.
  const span = base.length > 1 ? last + last / (base.length - 1) : 1;
  if (options.loadMethod === 'compress' || m === 1) {
    const requests = base.map((r) => ({ ...r, arrivalSeconds: r.arrivalSeconds / m }));
    return {
      name: options.name,
      requests,
      description:
        m === 1
          ? `${options.name} as recorded`
          : `${options.name} with time compressed ${m}x (arrival_s / ${m}): ${formatSeconds(last)} -> ${formatSeconds(last / m)}`,
      notes: [...file.notes],
    };
  }
  const random = createRandom(options.seed, 'overlay');
  const whole = Math.floor(m);
  const fraction = m - whole;
  const copies: { offset: number; keep: number }[] = [];
  for (let i = 0; i < whole; i++) copies.push({ offset: i === 0 ? 0 : random.next() * span, keep: 1 });
  if (fraction > 1e-9) copies.push({ offset: whole === 0 ? 0 : random.next() * span, keep: fraction });
  const requests: TraceRequest[] = [];
  for (const copy of copies) {
    for (const r of base) {
      if (copy.keep < 1 && random.next() >= copy.keep) continue;
      let t = r.arrivalSeconds + copy.offset;
      if (t >= span) t -= span;
      requests.push({ arrivalSeconds: t, inputTokens: r.inputTokens, outputTokens: r.outputTokens });
    }
  }
  requests.sort((a, b) => a.arrivalSeconds - b.arrivalSeconds);
  const offsets = copies
    .slice(1)
    .map((c) => `${Math.round(c.offset)}s${c.keep < 1 ? ` (kept ${Math.round(c.keep * 100)}%)` : ''}`);
  const description =
    m < 1
      ? `${options.name} thinned to ${Math.round(m * 100)}% of its requests (seeded)`
      : `${options.name} x${m}: ${copies.length} overlaid copies of the trace, each circularly time-shifted by a seeded random offset within its ${formatSeconds(span)} span (offsets 0s${offsets.length > 0 ? `, ${offsets.slice(0, 8).join(', ')}${offsets.length > 8 ? `, and ${offsets.length - 8} more` : ''}` : ''})`;
  return { name: options.name, requests, description, notes: [...file.notes] };
}

function synthesize(file: Extract<ParsedTraceFile, { kind: 'lengths' }>, options: ShapeOptions): Trace {
  const rate = options.arrivalRatePerSecond;
  if (rate === undefined) {
    throw new InvalidInputError(
      '--arrival-rate',
      `${options.name} has request lengths but no arrival times; give --arrival-rate (requests per second of a synthetic Poisson process)`,
    );
  }
  const duration = options.durationSeconds ?? 3600;
  const effectiveRate = rate * options.loadMultiplier;
  const random = createRandom(options.seed, 'arrivals');
  const requests: TraceRequest[] = [];
  let t = exponential(random, effectiveRate);
  let i = 0;
  while (t < duration) {
    const lengths = file.lengths[i % file.lengths.length] as { inputTokens: number; outputTokens: number };
    requests.push({
      arrivalSeconds: t,
      inputTokens: lengths.inputTokens,
      outputTokens: lengths.outputTokens,
    });
    i++;
    t += exponential(random, effectiveRate);
  }
  if (requests.length === 0) {
    throw new InvalidInputError(
      '--arrival-rate',
      `${rate} requests/s over ${duration}s produced no request; raise --arrival-rate or --duration`,
    );
  }
  const notes = [...file.notes];
  if (i > file.lengths.length) notes.push(`the ${file.lengths.length} lengths were reused in file order`);
  return {
    name: options.name,
    requests,
    description: `${options.name}: lengths in file order, synthetic Poisson arrivals at ${round(effectiveRate)} requests/s${options.loadMultiplier !== 1 ? ` (${rate}/s x load multiplier ${options.loadMultiplier})` : ''} for ${formatSeconds(duration)} (seeded)`,
    notes,
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

export function formatSeconds(seconds: number): string {
  if (seconds >= 3600) return `${(seconds / 3600).toFixed(2)} h`;
  if (seconds >= 120) return `${(seconds / 60).toFixed(1)} min`;
  return `${Math.round(seconds)} s`;
}
