/**
 * @module Parser for the Prometheus text exposition format 0.0.4 and the OpenMetrics 1.0 text format,
 * the two formats inference engines serve on `/metrics` (vLLM, SGLang and trtllm-serve through Python's
 * prometheus_client, TGI through Rust's metrics-exporter-prometheus, Triton through prometheus-cpp).
 *
 * Why our own: prom-client only instruments, and the one maintained-looking parser on npm
 * (`parse-prometheus-text-format`) accepts malformed lines silently, does not check duplicates or
 * limits, and is several times slower (see bench/exposition-parser.ts for the side-by-side figures).
 *
 * Guarantees:
 * - All or nothing: a payload either parses whole or throws an ExpositionError naming the 1-based
 *   line. A text payload must end with a newline and an OpenMetrics payload with `# EOF`, so a
 *   body cut mid-line (a dropped connection) is rejected rather than taken as complete.
 * - Bounded: limits on bytes, samples, line length, labels per sample and label value length.
 * - Strict: metric and label names, label value escapes (`\\`, `\"`, `\n` only), float values
 *   (`NaN`, `+Inf`, `-Inf` included), integer millisecond timestamps (text) or float second
 *   timestamps (OpenMetrics), duplicate series (same name and label set, in any label order),
 *   histogram buckets without a numeric `le`, summary quantiles without a numeric `quantile`,
 *   samples that do not fit the declared type of their family, second HELP/TYPE lines.
 * - Lenient where real exporters differ: blanks between tokens, trailing commas in label sets,
 *   series of a family in any order (vLLM multiprocess mode writes `_sum` before the buckets), and
 *   histograms without a `+Inf` bucket (published vLLM excerpts have them; consumers treat such a
 *   histogram as unusable, as Prometheus' histogram_quantile does).
 *
 * `_created` series are kept as samples of their family (OpenMetrics) or as gauges of their own
 * (prometheus_client text output); consumers ignore them.
 */
import { ExpositionError } from './errors.ts';

export const METRIC_TYPES = [
  'counter',
  'gauge',
  'histogram',
  'gaugehistogram',
  'summary',
  'info',
  'stateset',
  'untyped',
  'unknown',
] as const;
export type MetricType = (typeof METRIC_TYPES)[number];

export type ExpositionFormat = 'prometheus-text' | 'openmetrics';

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  /** The sample's own name, e.g. `vllm:request_prompt_tokens_bucket`. */
  readonly name: string;
  readonly labels: Labels;
  readonly value: number;
  /** Explicit timestamp of the sample in Unix milliseconds; undefined when the exporter gave none. */
  readonly timestampMs: number | undefined;
}

export interface MetricFamily {
  /** Family name as declared by `# TYPE`/`# HELP`, or the sample name for an undeclared series. */
  readonly name: string;
  type: MetricType;
  help: string | undefined;
  unit: string | undefined;
  readonly samples: Sample[];
}

export interface Exposition {
  readonly format: ExpositionFormat;
  readonly families: readonly MetricFamily[];
  readonly sampleCount: number;
}

export interface ExpositionLimits {
  /** Largest payload accepted, in UTF-16 code units of the decoded text (bytes for ASCII payloads). */
  maxBytes: number;
  maxSamples: number;
  maxLineLength: number;
  maxLabelsPerSample: number;
  maxLabelValueLength: number;
}

/**
 * Defaults sized for real engines: a vLLM 0.11 pod serves about 600 series in 60 KB; newer vLLM
 * builds add a `vllm:vllm_config_info` line whose labels run to several KB (vllm-project/vllm#44691,
 * reference/engine-metrics.md §1.4), hence the generous line and label limits.
 */
export const DEFAULT_EXPOSITION_LIMITS: Readonly<ExpositionLimits> = {
  maxBytes: 16 * 1024 * 1024,
  maxSamples: 200_000,
  maxLineLength: 1024 * 1024,
  maxLabelsPerSample: 128,
  maxLabelValueLength: 64 * 1024,
};

/** Suffixes a sample name may carry on top of its family name, per family type. */
const SUFFIXES: Readonly<Record<MetricType, readonly string[]>> = {
  counter: ['_total', '_created', ''],
  gauge: [''],
  histogram: ['_bucket', '_sum', '_count', '_created'],
  gaugehistogram: ['_bucket', '_gsum', '_gcount'],
  summary: ['', '_sum', '_count', '_created'],
  info: ['_info', ''],
  stateset: [''],
  untyped: [''],
  unknown: [''],
};

const CANDIDATE_SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created', '_info', '_gsum', '_gcount'];

/** Picks the parser for an HTTP Content-Type; anything that is not OpenMetrics is text 0.0.4. */
export function formatFromContentType(contentType: string | null | undefined): ExpositionFormat {
  return contentType?.toLowerCase().includes('application/openmetrics-text')
    ? 'openmetrics'
    : 'prometheus-text';
}

export function parseExposition(
  text: string,
  options?: { format?: ExpositionFormat; limits?: Partial<ExpositionLimits> },
): Exposition {
  const limits = { ...DEFAULT_EXPOSITION_LIMITS, ...options?.limits };
  return new Parser(text, options?.format ?? 'prometheus-text', limits).parse();
}

const CH_TAB = 9;
const CH_CR = 13;
const CH_SPACE = 32;
const CH_QUOTE = 34;
const CH_HASH = 35;
const CH_COMMA = 44;
const CH_EQ = 61;
const CH_BACKSLASH = 92;
const CH_LBRACE = 123;
const CH_RBRACE = 125;

function isNameStart(c: number, allowColon: boolean): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || (allowColon && c === 58);
}

function isNameChar(c: number, allowColon: boolean): boolean {
  return isNameStart(c, allowColon) || (c >= 48 && c <= 57);
}

function isBlank(c: number): boolean {
  return c === CH_SPACE || c === CH_TAB;
}

/**
 * Go's strconv.ParseFloat grammar, which Prometheus uses: decimal floats with optional exponent,
 * and case-insensitive NaN / Inf / Infinity with an optional sign. JavaScript's Number() would also
 * take "", "0x1F", "0b1" and "Infinity"-only spellings, so the token is checked first.
 */
export function parseFloatToken(token: string): number | undefined {
  const n = token.length;
  if (n === 0) return undefined;
  let c = token.charCodeAt(0);
  const signed = c === 43 || c === 45;
  const first = signed ? token.charCodeAt(1) : c;
  if ((first >= 48 && first <= 57) || first === 46) {
    // Fast path: Number() takes exactly Go's decimal grammar except radix prefixes (0x, 0b, 0o),
    // which are refused here; it already refuses underscores, a second dot and a bare exponent.
    const second = token.charCodeAt(signed ? 2 : 1);
    if (first === 48 && (second | 32) >= 97 && (second | 32) <= 122 && (second | 32) !== 101)
      return undefined;
    const value = Number(token);
    return Number.isNaN(value) ? undefined : value;
  }
  const word = (signed ? token.slice(1) : token).toLowerCase();
  if (word === 'nan') return Number.NaN;
  c = token.charCodeAt(0);
  if (word === 'inf' || word === 'infinity') return c === 45 ? -Infinity : Infinity;
  return undefined;
}

class Parser {
  private readonly text: string;
  private readonly format: ExpositionFormat;
  private readonly limits: ExpositionLimits;
  private readonly om: boolean;
  private pos = 0;
  private line = 0;
  private lineEnd = 0;
  private sampleCount = 0;
  private readonly families: MetricFamily[] = [];
  private readonly byName = new Map<string, MetricFamily>();
  private readonly seriesKeys = new Set<string>();
  private current: MetricFamily | undefined;
  private lastName = '';
  private readonly lastLabelNames: string[] = [];
  private readonly lastLabelValues: (string | undefined)[] = [];
  /** Characters of `name="value"` pairs read by the last readLabels, for the canonical-key check. */
  private labelChars = 0;
  /** Families that had a `# TYPE` line: a second one is an error. */
  private readonly typed = new Set<MetricFamily>();
  /** Reused between samples: label names and values of the sample being read. */
  private readonly labelNames: string[] = [];
  private readonly labelValues: string[] = [];

  constructor(text: string, format: ExpositionFormat, limits: ExpositionLimits) {
    this.text = text;
    this.format = format;
    this.limits = limits;
    this.om = format === 'openmetrics';
  }

  parse(): Exposition {
    const { text } = this;
    if (text.length > this.limits.maxBytes) {
      throw new ExpositionError(
        'EXPOSITION_LIMIT',
        `payload of ${text.length} bytes exceeds the limit of ${this.limits.maxBytes} bytes`,
      );
    }
    let sawEof = false;
    while (this.pos < text.length) {
      this.line++;
      if (sawEof) this.fail('content after "# EOF"');
      let end = text.indexOf('\n', this.pos);
      if (end === -1) {
        this.fail(
          this.om
            ? 'payload ends without "# EOF" (truncated?)'
            : 'last line does not end with a newline (payload truncated?)',
        );
      }
      if (end - this.pos > this.limits.maxLineLength) {
        throw new ExpositionError(
          'EXPOSITION_LIMIT',
          `line of ${end - this.pos} characters exceeds the limit of ${this.limits.maxLineLength}`,
          { line: this.line },
        );
      }
      if (end > this.pos && text.charCodeAt(end - 1) === CH_CR) end--;
      this.lineEnd = end;
      if (this.readLine()) sawEof = true;
      this.pos = text.charCodeAt(end) === CH_CR ? end + 2 : end + 1;
    }
    if (this.om && !sawEof) {
      this.line++;
      this.fail('payload ends without "# EOF" (truncated?)');
    }
    return { format: this.format, families: this.families, sampleCount: this.sampleCount };
  }

  private fail(message: string): never {
    throw new ExpositionError('EXPOSITION_MALFORMED', message, { line: this.line });
  }

  /** Returns true for the OpenMetrics `# EOF` line. */
  private readLine(): boolean {
    const { text } = this;
    if (this.pos === this.lineEnd) {
      if (this.om) this.fail('empty line (not allowed in OpenMetrics)');
      return false;
    }
    const first = text.charCodeAt(this.pos);
    if (first === CH_HASH) return this.readComment();
    if (isBlank(first)) {
      let p = this.pos;
      while (p < this.lineEnd && isBlank(text.charCodeAt(p))) p++;
      if (p === this.lineEnd && !this.om) return false;
      if (text.charCodeAt(p) === CH_HASH && !this.om) {
        this.pos = p;
        return this.readComment();
      }
      this.fail('line starts with whitespace');
    }
    this.readSample();
    return false;
  }

  private readComment(): boolean {
    const { text, lineEnd } = this;
    let p = this.pos + 1;
    if (this.om) {
      if (lineEnd - p === 4 && text.startsWith(' EOF', p)) return true;
      if (text.charCodeAt(p) !== CH_SPACE) this.fail('expected "# HELP", "# TYPE", "# UNIT" or "# EOF"');
      p++;
    } else {
      while (p < lineEnd && isBlank(text.charCodeAt(p))) p++;
    }
    const keywordEnd = this.scanWhile(p, (c) => c >= 65 && c <= 90);
    const keyword = text.slice(p, keywordEnd);
    const isMeta = keyword === 'HELP' || keyword === 'TYPE' || (this.om && keyword === 'UNIT');
    if (!isMeta || (keywordEnd < lineEnd && !isBlank(text.charCodeAt(keywordEnd)))) {
      if (this.om) this.fail(`unknown comment "# ${text.slice(p, Math.min(lineEnd, p + 20))}"`);
      return false; // An ordinary comment in the text format.
    }
    p = keywordEnd;
    while (p < lineEnd && isBlank(text.charCodeAt(p))) p++;
    const nameEnd = this.scanWhile(p, (c) => isNameChar(c, true));
    if (nameEnd === p || !isNameStart(text.charCodeAt(p), true)) {
      this.fail(`expected a metric name after "# ${keyword}"`);
    }
    const name = text.slice(p, nameEnd);
    p = nameEnd;
    if (p < lineEnd && !isBlank(text.charCodeAt(p))) {
      this.fail(`invalid character "${text[p]}" in metric name after "# ${keyword}"`);
    }
    while (p < lineEnd && isBlank(text.charCodeAt(p))) p++;
    const rest = text.slice(p, lineEnd);
    const family = this.familyForMeta(name);
    if (keyword === 'HELP') {
      if (family.help !== undefined) this.fail(`second HELP line for "${name}"`);
      family.help = this.unescapeHelp(rest);
    } else if (keyword === 'TYPE') {
      const type = rest.trimEnd();
      if (!(METRIC_TYPES as readonly string[]).includes(type)) {
        this.fail(`unknown type "${type}" for "${name}"; allowed: ${METRIC_TYPES.join(', ')}`);
      }
      if (this.typed.has(family)) this.fail(`second TYPE line for "${name}"`);
      if (family.samples.length > 0) this.fail(`TYPE line for "${name}" comes after its samples`);
      family.type = type as MetricType;
      this.typed.add(family);
    } else {
      if (family.unit !== undefined) this.fail(`second UNIT line for "${name}"`);
      family.unit = rest;
    }
    return false;
  }

  private familyForMeta(name: string): MetricFamily {
    const existing = this.byName.get(name);
    if (existing !== undefined) {
      if (existing !== this.current && this.om) this.fail(`metadata for "${name}" is not next to its family`);
      this.current = existing;
      return existing;
    }
    const family: MetricFamily = {
      name,
      type: this.om ? 'unknown' : 'untyped',
      help: undefined,
      unit: undefined,
      samples: [],
    };
    this.families.push(family);
    this.byName.set(name, family);
    this.current = family;
    return family;
  }

  private unescapeHelp(raw: string): string {
    if (!raw.includes('\\')) return raw;
    let out = '';
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i];
      if (c !== '\\') {
        out += c;
        continue;
      }
      const next = raw[++i];
      if (next === '\\') out += '\\';
      else if (next === 'n') out += '\n';
      else if (next === '"' && this.om) out += '"';
      else if (next !== undefined && !this.om)
        out += `\\${next}`; // Go's text parser keeps unknown escapes verbatim.
      else this.fail(`invalid escape "\\${next ?? ''}" in HELP text`);
    }
    return out;
  }

  private skipBlanks(from: number): number {
    let p = from;
    while (p < this.lineEnd && isBlank(this.text.charCodeAt(p))) p++;
    return p;
  }

  private scanWhile(from: number, accept: (c: number) => boolean): number {
    let p = from;
    while (p < this.lineEnd && accept(this.text.charCodeAt(p))) p++;
    return p;
  }

  private readSample(): void {
    const { text, lineEnd } = this;
    let p = this.pos;
    if (!isNameStart(text.charCodeAt(p), true)) {
      if (text.charCodeAt(p) === CH_LBRACE) this.fail('quoted (UTF-8) metric names are not supported');
      this.fail(`invalid character "${text[p]}" at the start of a metric name`);
    }
    // Consecutive samples usually repeat their name, and label names repeat position by position:
    // reusing the strings read last time (when the text matches) saves a copy per sample, which is
    // most of the memory a parsed fleet scrape holds.
    let name = this.lastName;
    if (name !== '' && text.startsWith(name, p) && !isNameChar(text.charCodeAt(p + name.length), true)) {
      p += name.length;
    } else {
      p++;
      while (p < lineEnd && isNameChar(text.charCodeAt(p), true)) p++;
      name = text.slice(this.pos, p);
      this.lastName = name;
    }
    let afterName = p;
    while (afterName < lineEnd && isBlank(text.charCodeAt(afterName))) afterName++;
    const names = this.labelNames;
    const values = this.labelValues;
    names.length = 0;
    values.length = 0;
    let sorted = true;
    let canonical = true;
    let keyEnd = p;
    if (text.charCodeAt(afterName) === CH_LBRACE) {
      this.labelChars = 0;
      p = this.readLabels(afterName + 1, names, values);
      keyEnd = p;
      for (let i = 1; i < names.length && sorted; i++)
        sorted = (names[i - 1] as string) < (names[i] as string);
      // Written exactly as `name{a="x",b="y"}` (sorted, no blanks, no trailing comma) when the length
      // of the text matches: then the text itself identifies the series, with no key to build.
      canonical =
        sorted && names.length > 0 && p - this.pos === name.length + 2 + this.labelChars + names.length - 1;
    }
    const valueStart = this.skipBlanks(p);
    if (valueStart >= lineEnd) this.fail(`sample "${name}" has no value`);
    if (valueStart === p) {
      this.fail(`expected a space after "${name}${names.length > 0 ? '{...}' : ''}", found "${text[p]}"`);
    }
    p = valueStart;
    let tokenEnd = p;
    while (tokenEnd < lineEnd && !isBlank(text.charCodeAt(tokenEnd))) tokenEnd++;
    const valueToken = text.slice(p, tokenEnd);
    const value = parseFloatToken(valueToken);
    if (value === undefined) this.fail(`invalid value "${clip(valueToken)}" for "${name}"`);
    p = tokenEnd;
    while (p < lineEnd && isBlank(text.charCodeAt(p))) p++;
    let timestampMs: number | undefined;
    if (p < lineEnd && text.charCodeAt(p) !== CH_HASH) {
      tokenEnd = p;
      while (tokenEnd < lineEnd && !isBlank(text.charCodeAt(tokenEnd))) tokenEnd++;
      timestampMs = this.parseTimestamp(text.slice(p, tokenEnd), name);
      p = tokenEnd;
      while (p < lineEnd && isBlank(text.charCodeAt(p))) p++;
    }
    if (p < lineEnd) {
      if (text.charCodeAt(p) !== CH_HASH || !this.om) {
        this.fail(`unexpected "${clip(text.slice(p, lineEnd))}" after the value of "${name}"`);
      }
      this.readExemplar(p + 1, name);
    }

    const family = this.familyForSample(name);
    this.checkTypeLabels(family, name, names, values);
    if (++this.sampleCount > this.limits.maxSamples) {
      throw new ExpositionError('EXPOSITION_LIMIT', `more than ${this.limits.maxSamples} samples`, {
        line: this.line,
      });
    }
    const key = canonical ? text.slice(this.pos, keyEnd) : seriesKey(name, names, values);
    const before = this.seriesKeys.size;
    this.seriesKeys.add(key);
    if (this.seriesKeys.size === before)
      this.fail(`duplicate series ${clip(describeSeries(name, names, values))}`);
    const labels: Record<string, string> = {};
    for (let i = 0; i < names.length; i++) {
      const labelName = names[i] as string;
      if (labelName === '__proto__') {
        Object.defineProperty(labels, labelName, { value: values[i], enumerable: true, writable: false });
      } else {
        labels[labelName] = values[i] as string;
      }
    }
    family.samples.push({ name, labels, value, timestampMs });
  }

  /** Reads `name="value",...}` starting after the brace; returns the position after the closing brace. */
  private readLabels(from: number, names: string[], values: string[]): number {
    const { text, lineEnd } = this;
    let p = from;
    for (;;) {
      while (p < lineEnd && isBlank(text.charCodeAt(p))) p++;
      if (p >= lineEnd) this.fail('label set is not closed with "}"');
      let c = text.charCodeAt(p);
      if (c === CH_RBRACE) return p + 1;
      if (!isNameStart(c, false)) {
        if (c === CH_QUOTE) this.fail('quoted (UTF-8) label names are not supported');
        this.fail(`invalid character "${text[p]}" at the start of a label name`);
      }
      let labelName = this.lastLabelNames[names.length] ?? '';
      if (
        labelName !== '' &&
        text.startsWith(labelName, p) &&
        !isNameChar(text.charCodeAt(p + labelName.length), false)
      ) {
        p += labelName.length;
      } else {
        const nameStart = p;
        p++;
        while (p < lineEnd && isNameChar(text.charCodeAt(p), false)) p++;
        labelName = text.slice(nameStart, p);
        if (names.length < 64) this.lastLabelNames[names.length] = labelName;
      }
      while (p < lineEnd && isBlank(text.charCodeAt(p))) p++;
      if (text.charCodeAt(p) !== CH_EQ) this.fail(`expected "=" after label name "${labelName}"`);
      p++;
      while (p < lineEnd && isBlank(text.charCodeAt(p))) p++;
      if (text.charCodeAt(p) !== CH_QUOTE)
        this.fail(`expected '"' to open the value of label "${labelName}"`);
      p++;
      const valueStart = p;
      const position = names.length;
      let escaped = false;
      // Values repeat too (model_name, engine): reuse last time's string at this position when the
      // text holds exactly it (no escapes: those are never cached) followed by the closing quote.
      let raw = this.lastLabelValues[position];
      if (raw !== undefined && text.startsWith(raw, p) && text.charCodeAt(p + raw.length) === CH_QUOTE) {
        p += raw.length;
      } else {
        for (;;) {
          if (p >= lineEnd) this.fail(`value of label "${labelName}" is not closed with '"'`);
          c = text.charCodeAt(p);
          if (c === CH_QUOTE) break;
          if (c === CH_BACKSLASH) {
            escaped = true;
            p++;
          }
          p++;
        }
        if (p - valueStart > this.limits.maxLabelValueLength) {
          throw new ExpositionError(
            'EXPOSITION_LIMIT',
            `value of label "${labelName}" is ${p - valueStart} characters long; the limit is ${this.limits.maxLabelValueLength}`,
            { line: this.line },
          );
        }
        raw = text.slice(valueStart, p);
        if (!escaped && position < 64) this.lastLabelValues[position] = raw;
      }
      this.labelChars += labelName.length + raw.length + 3;
      p++;
      if (names.includes(labelName)) this.fail(`label "${labelName}" appears twice`);
      if (names.length >= this.limits.maxLabelsPerSample) {
        throw new ExpositionError(
          'EXPOSITION_LIMIT',
          `more than ${this.limits.maxLabelsPerSample} labels on one sample`,
          { line: this.line },
        );
      }
      names.push(labelName);
      values.push(escaped ? this.unescapeLabelValue(raw, labelName) : raw);
      while (p < lineEnd && isBlank(text.charCodeAt(p))) p++;
      c = text.charCodeAt(p);
      if (c === CH_COMMA) {
        p++;
        continue;
      }
      if (c === CH_RBRACE) return p + 1;
      this.fail(`expected "," or "}" after the value of label "${labelName}"`);
    }
  }

  private unescapeLabelValue(raw: string, labelName: string): string {
    let out = '';
    let start = 0;
    for (let i = raw.indexOf('\\'); i !== -1; i = raw.indexOf('\\', start)) {
      out += raw.slice(start, i);
      const next = raw.charCodeAt(i + 1);
      if (next === CH_BACKSLASH) out += '\\';
      else if (next === CH_QUOTE) out += '"';
      else if (next === 110) out += '\n';
      else this.fail(`invalid escape "\\${raw[i + 1] ?? ''}" in the value of label "${labelName}"`);
      start = i + 2;
    }
    return out + raw.slice(start);
  }

  private parseTimestamp(token: string, name: string): number {
    if (this.om) {
      const seconds = parseFloatToken(token);
      if (seconds === undefined || !Number.isFinite(seconds)) {
        this.fail(`invalid timestamp "${clip(token)}" for "${name}" (OpenMetrics: seconds)`);
      }
      return Math.round(seconds * 1000);
    }
    if (!/^-?\d{1,16}$/.test(token)) {
      this.fail(`invalid timestamp "${clip(token)}" for "${name}" (text format: integer milliseconds)`);
    }
    return Number(token);
  }

  /** OpenMetrics exemplar: ` # {labels} value [timestamp]`; validated and dropped. */
  private readExemplar(from: number, name: string): void {
    const { text, lineEnd } = this;
    let p = from;
    while (p < lineEnd && isBlank(text.charCodeAt(p))) p++;
    if (text.charCodeAt(p) !== CH_LBRACE) this.fail(`exemplar of "${name}" must start with "{"`);
    p = this.readLabels(p + 1, [], []);
    while (p < lineEnd && isBlank(text.charCodeAt(p))) p++;
    const parts = text
      .slice(p, lineEnd)
      .split(/[ \t]+/)
      .filter(Boolean);
    if (parts.length < 1 || parts.length > 2 || parseFloatToken(parts[0] as string) === undefined) {
      this.fail(`invalid exemplar value for "${name}"`);
    }
    if (parts.length === 2 && parseFloatToken(parts[1] as string) === undefined) {
      this.fail(`invalid exemplar timestamp for "${name}"`);
    }
  }

  private familyForSample(name: string): MetricFamily {
    const current = this.current;
    if (current !== undefined && fits(current, name)) return current;
    let family = this.byName.get(name);
    if (family === undefined) {
      for (const suffix of CANDIDATE_SUFFIXES) {
        if (!name.endsWith(suffix)) continue;
        const candidate = this.byName.get(name.slice(0, -suffix.length));
        if (candidate !== undefined && SUFFIXES[candidate.type].includes(suffix)) {
          family = candidate;
          break;
        }
      }
    } else if (!fits(family, name)) {
      this.fail(
        `sample "${name}" does not fit ${family.type} "${family.name}" (allowed: ${SUFFIXES[family.type]
          .map((s) => family?.name + s)
          .join(', ')})`,
      );
    }
    if (family !== undefined) {
      if (this.om) this.fail(`samples of "${family.name}" are interleaved with another family`);
      this.current = family;
      return family;
    }
    const created: MetricFamily = {
      name,
      type: this.om ? 'unknown' : 'untyped',
      help: undefined,
      unit: undefined,
      samples: [],
    };
    this.families.push(created);
    this.byName.set(name, created);
    this.current = created;
    return created;
  }

  private checkTypeLabels(family: MetricFamily, name: string, names: string[], values: string[]): void {
    const type = family.type;
    if ((type === 'histogram' || type === 'gaugehistogram') && name.endsWith('_bucket')) {
      const i = names.indexOf('le');
      if (i === -1) this.fail(`histogram bucket "${name}" has no "le" label`);
      if (parseFloatToken(values[i] as string) === undefined) {
        this.fail(`histogram bucket "${name}" has a non-numeric le="${clip(values[i] as string)}"`);
      }
    } else if (type === 'summary' && name === family.name) {
      const i = names.indexOf('quantile');
      if (i === -1) this.fail(`summary "${name}" has no "quantile" label`);
      if (parseFloatToken(values[i] as string) === undefined) {
        this.fail(`summary "${name}" has a non-numeric quantile="${clip(values[i] as string)}"`);
      }
    }
  }
}

function fits(family: MetricFamily, name: string): boolean {
  if (!name.startsWith(family.name)) return false;
  const suffix = name.slice(family.name.length);
  return SUFFIXES[family.type].includes(suffix);
}

/**
 * Identity of a series, written the canonical way: `name{a="x",b="y"}` with labels sorted and values
 * escaped as in the exposition. A line already written that way is its own key (see readSample);
 * this builds the same string for lines written otherwise (other label order, blanks), so the two
 * spellings of one series collide.
 */
function seriesKey(name: string, names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return name;
  const order = names.map((_, i) => i).sort((a, b) => ((names[a] as string) < (names[b] as string) ? -1 : 1));
  const pairs = order.map((i) => `${names[i]}="${escapeLabelValue(values[i] as string)}"`);
  return `${name}{${pairs.join(',')}}`;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function describeSeries(name: string, names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return name;
  return `${name}{${names.map((n, i) => `${n}=${JSON.stringify(values[i])}`).join(',')}}`;
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Samples of one name across families, with the family type, for consumers that look series up by name. */
export interface IndexedSeries {
  readonly type: MetricType;
  readonly familyName: string;
  readonly samples: Sample[];
}

/**
 * Groups samples by sample name, keeping only the names asked for (`vllm:num_requests_running`,
 * `vllm:request_prompt_tokens_bucket`, ...). One pass over the exposition.
 */
export function indexSamples(
  exposition: Exposition,
  wanted: ReadonlySet<string>,
): Map<string, IndexedSeries> {
  const index = new Map<string, IndexedSeries>();
  for (const family of exposition.families) {
    for (const sample of family.samples) {
      if (!wanted.has(sample.name)) continue;
      let entry = index.get(sample.name);
      if (entry === undefined) {
        entry = { type: family.type, familyName: family.name, samples: [] };
        index.set(sample.name, entry);
      }
      entry.samples.push(sample);
    }
  }
  return index;
}
