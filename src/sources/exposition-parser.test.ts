import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExpositionError } from './errors.ts';
import {
  type Exposition,
  type ExpositionFormat,
  formatFromContentType,
  indexSamples,
  parseExposition,
  parseFloatToken,
} from './exposition-parser.ts';

const FIXTURES_DIR = new URL('../../../shared/reference/fixtures/', import.meta.url).pathname;

function fixture(name: string): string {
  return readFileSync(join(FIXTURES_DIR, name), 'utf8');
}

function series(exposition: Exposition, name: string) {
  return exposition.families.flatMap((f) => f.samples.filter((s) => s.name === name));
}

function parseError(text: string, format: ExpositionFormat = 'prometheus-text'): ExpositionError {
  try {
    parseExposition(text, { format });
  } catch (error) {
    expect(error).toBeInstanceOf(ExpositionError);
    return error as ExpositionError;
  }
  throw new Error(`expected a parse error for ${JSON.stringify(text)}`);
}

describe('parseExposition on the reference fixtures', () => {
  const files = readdirSync(FIXTURES_DIR).filter((f) => f.endsWith('.prom'));

  it('finds the fixtures', () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
  });

  it.each(files)('parses %s', (file) => {
    const text = fixture(file);
    const exposition = parseExposition(text);
    const sampleLines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(exposition.sampleCount).toBe(sampleLines.length);
  });

  it('reads the vLLM 0.11 synthetic payload with types, labels and values', () => {
    const e = parseExposition(fixture('vllm-0.11-synthetic.prom'));
    const running = series(e, 'vllm:num_requests_running');
    expect(running).toEqual([
      {
        name: 'vllm:num_requests_running',
        labels: { engine: '0', model_name: 'meta-llama/Llama-3.1-8B-Instruct' },
        value: 24,
        timestampMs: undefined,
      },
    ]);
    expect(series(e, 'vllm:prompt_tokens_total')[0]?.value).toBe(1_871_233);
    const histogram = e.families.find((f) => f.name === 'vllm:request_prompt_tokens');
    expect(histogram?.type).toBe('histogram');
    expect(histogram?.samples).toHaveLength(15);
    const inf = histogram?.samples.find((s) => s.labels.le === '+Inf');
    expect(inf?.value).toBe(1402);
    expect(e.families.find((f) => f.name === 'vllm:prompt_tokens_created')?.type).toBe('gauge');
    const info = series(e, 'vllm:cache_config_info')[0];
    expect(info?.labels.num_gpu_blocks).toBe('33676');
    expect(info?.labels.block_size).toBe('16');
  });

  it('accepts vLLM multiprocess order (_sum before buckets) and excerpts without +Inf', () => {
    const e = parseExposition(fixture('vllm-v0-lora.prom'));
    const family = e.families.find((f) => f.name === 'vllm:request_prompt_tokens');
    expect(family?.samples.map((s) => s.name)).toEqual([
      'vllm:request_prompt_tokens_sum',
      'vllm:request_prompt_tokens_sum',
      'vllm:request_prompt_tokens_bucket',
      'vllm:request_prompt_tokens_bucket',
      'vllm:request_prompt_tokens_bucket',
    ]);
  });

  it('keeps exponent notation exact (vLLM 0.10 _created and tiny usage)', () => {
    const e = parseExposition(fixture('vllm-0.10.0.prom'));
    expect(series(e, 'vllm:kv_cache_usage_perc')[0]?.value).toBe(9.75010481363281e-6);
    expect(series(e, 'vllm:gpu_prefix_cache_hits_created')[0]?.value).toBe(1.7537953269353123e9);
  });

  it('reads Triton TRT-LLM category labels', () => {
    const e = parseExposition(fixture('triton-trtllm-readme-0b9d7d5.prom'));
    const byType = Object.fromEntries(
      series(e, 'nv_trt_llm_kv_cache_block_metrics').map((s) => [s.labels.kv_cache_block_type, s.value]),
    );
    expect(byType).toEqual({ fraction: 0.4875, tokens_per: 64, max: 6239 });
  });
});

describe('parseExposition grammar', () => {
  it.each([
    ['NaN', Number.NaN],
    ['+Inf', Infinity],
    ['-Inf', -Infinity],
    ['1e3', 1000],
    ['-0.5', -0.5],
    ['.5', 0.5],
    ['5.', 5],
    ['1.5E-3', 0.0015],
  ])('value %s', (token, expected) => {
    const e = parseExposition(`m ${token}\n`);
    expect(e.families[0]?.samples[0]?.value).toBe(expected);
  });

  it('unescapes label values and HELP text', () => {
    const e = parseExposition(
      '# HELP m a \\\\ b\\nc\n# TYPE m gauge\nm{path="C:\\\\dir",q="say \\"hi\\"",nl="a\\nb"} 1\n',
    );
    const family = e.families[0];
    expect(family?.help).toBe('a \\ b\nc');
    expect(family?.samples[0]?.labels).toEqual({ path: 'C:\\dir', q: 'say "hi"', nl: 'a\nb' });
  });

  it('accepts blanks, trailing commas, empty label sets, timestamps and comments (text)', () => {
    const e = parseExposition(
      '# a comment\n\n  # indented comment\nm{a="1",} 2 1700000000000\nn {} 3\nk\t{ b = "x" }\t4\n',
    );
    expect(e.families.map((f) => [f.name, f.type, f.samples[0]?.value, f.samples[0]?.timestampMs])).toEqual([
      ['m', 'untyped', 2, 1_700_000_000_000],
      ['n', 'untyped', 3, undefined],
      ['k', 'untyped', 4, undefined],
    ]);
  });

  it('accepts CRLF line endings', () => {
    expect(parseExposition('m 1\r\nn 2\r\n').sampleCount).toBe(2);
  });

  it('groups histogram and summary samples under their family in any order', () => {
    const e = parseExposition(
      [
        '# TYPE h histogram',
        'h_sum 10',
        'h_bucket{le="1"} 1',
        'h_bucket{le="+Inf"} 2',
        'h_count 2',
        '# TYPE s summary',
        's{quantile="0.5"} 3',
        's_sum 9',
        's_count 3',
        '',
      ].join('\n'),
    );
    expect(e.families.map((f) => [f.name, f.type, f.samples.length])).toEqual([
      ['h', 'histogram', 4],
      ['s', 'summary', 3],
    ]);
  });

  it('parses OpenMetrics: counters with _total/_created, units, float timestamps, exemplars, EOF', () => {
    const text = [
      '# TYPE tokens counter',
      '# UNIT tokens tokens',
      '# HELP tokens Tokens.',
      'tokens_total{model="m"} 17 1700000000.5',
      'tokens_created{model="m"} 1700000000',
      '# TYPE lat histogram',
      'lat_bucket{le="0.5"} 1 # {trace_id="abc"} 0.3 1700000000.1',
      'lat_bucket{le="+Inf"} 2',
      'lat_count 2',
      'lat_sum 1.1',
      '# EOF',
      '',
    ].join('\n');
    const e = parseExposition(text, { format: 'openmetrics' });
    const tokens = e.families[0];
    expect(tokens).toMatchObject({ name: 'tokens', type: 'counter', unit: 'tokens', help: 'Tokens.' });
    expect(tokens?.samples[0]).toMatchObject({
      name: 'tokens_total',
      value: 17,
      timestampMs: 1_700_000_000_500,
    });
    expect(e.families[1]?.samples).toHaveLength(4);
  });

  it('indexes samples by name with their family type', () => {
    const e = parseExposition('# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 2\nh_sum 3\ng 1\n');
    const index = indexSamples(e, new Set(['h_bucket', 'g', 'absent']));
    expect([...index.keys()]).toEqual(['h_bucket', 'g']);
    expect(index.get('h_bucket')?.type).toBe('histogram');
    expect(index.get('g')?.type).toBe('untyped');
  });

  it('keeps a label named __proto__ as data', () => {
    const e = parseExposition('m{__proto__="x"} 1\n');
    const labels = e.families[0]?.samples[0]?.labels;
    expect(Object.getPrototypeOf(labels)).toBe(Object.prototype);
    expect(Object.entries(labels ?? {})).toEqual([['__proto__', 'x']]);
  });

  it('picks the format from the Content-Type', () => {
    expect(formatFromContentType('application/openmetrics-text; version=1.0.0; charset=utf-8')).toBe(
      'openmetrics',
    );
    expect(formatFromContentType('text/plain; version=0.0.4')).toBe('prometheus-text');
    expect(formatFromContentType(null)).toBe('prometheus-text');
  });
});

describe('parseExposition rejects malformed and hostile payloads with the line number', () => {
  it.each([
    ['truncated mid-line', 'a 1\nb{x="1', 2, /does not end with a newline/],
    ['truncated inside a label set', 'a 1\nb{x="1"\n', 2, /expected "," or "}"/],
    ['missing value', 'a\n', 1, /has no value/],
    ['bad value', 'a one\n', 1, /invalid value "one"/],
    ['hex value', 'a 0x10\n', 1, /invalid value/],
    ['empty label name', 'a{="x"} 1\n', 1, /start of a label name/],
    ['unquoted label value', 'a{b=c} 1\n', 1, /to open the value/],
    ['unterminated label value', 'a{b="c} 1\n', 1, /not closed/],
    ['bad escape', 'a{b="\\t"} 1\n', 1, /invalid escape/],
    ['duplicate label', 'a{b="1",b="2"} 1\n', 1, /appears twice/],
    ['duplicate series', 'a{x="1",y="2"} 1\nb 2\na{y="2",x="1"} 3\n', 3, /duplicate series/],
    ['duplicate unlabelled series', 'a 1\na 2\n', 2, /duplicate series/],
    ['garbage after value', 'a 1 2 3\n', 1, /unexpected "3"/],
    ['float timestamp in text', 'a 1 1.5\n', 1, /invalid timestamp/],
    ['unknown type', '# TYPE a countr\na 1\n', 1, /unknown type "countr"/],
    ['second TYPE', '# TYPE a gauge\n# TYPE a gauge\n', 2, /second TYPE/],
    ['TYPE after samples', 'a 1\n# TYPE a gauge\n', 2, /after its samples/],
    ['second HELP', '# HELP a x\n# HELP a y\n', 2, /second HELP/],
    ['bucket without le', '# TYPE h histogram\nh_bucket 1\n', 2, /no "le" label/],
    ['non-numeric le', '# TYPE h histogram\nh_bucket{le="big"} 1\n', 2, /non-numeric le/],
    ['summary without quantile', '# TYPE s summary\ns 1\n', 2, /no "quantile"/],
    ['histogram sample without suffix', '# TYPE h histogram\nh 1\n', 2, /does not fit histogram "h"/],
    ['leading whitespace before a sample', ' a 1\n', 1, /starts with whitespace/],
    ['invalid metric name', '1a 1\n', 1, /start of a metric name/],
    ['quoted UTF-8 name', '{"a.b"} 1\n', 1, /quoted/],
    ['binary garbage', '\u0000\u0001\u0002\n', 1, /invalid character/],
  ])('%s', (_title, text, line, message) => {
    const error = parseError(text);
    expect(error.code).toBe('EXPOSITION_MALFORMED');
    expect(error.line).toBe(line);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(new RegExp(`^line ${line}: `));
  });

  it.each([
    ['missing EOF', '# TYPE a gauge\na 1\n', /without "# EOF"/],
    ['content after EOF', 'a 1\n# EOF\nb 2\n', /after "# EOF"/],
    ['empty line', 'a 1\n\n# EOF\n', /empty line/],
    ['interleaved families', '# TYPE a gauge\na{x="1"} 1\nb 1\na{x="2"} 2\n# EOF\n', /interleaved/],
    ['unknown comment', '# hello\n# EOF\n', /unknown comment/],
  ])('OpenMetrics: %s', (_title, text, message) => {
    expect(parseError(text, 'openmetrics').message).toMatch(message);
  });

  it.each([
    ['bytes', 'a 1\n'.repeat(100), { maxBytes: 100 }, /exceeds the limit of 100 bytes/],
    ['samples', 'a{i="1"} 1\na{i="2"} 1\na{i="3"} 1\n', { maxSamples: 2 }, /more than 2 samples/],
    ['label value length', `a{big="${'x'.repeat(5000)}"} 1\n`, { maxLabelValueLength: 4096 }, /big.*5000/],
    ['labels per sample', 'a{a="1",b="2",c="3"} 1\n', { maxLabelsPerSample: 2 }, /more than 2 labels/],
    ['line length', `a{b="${'y'.repeat(300)}"} 1\n`, { maxLineLength: 200 }, /exceeds the limit of 200/],
  ])('limit on %s', (_title, text, limits, message) => {
    try {
      parseExposition(text, { limits });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ExpositionError);
      expect((error as ExpositionError).code).toBe('EXPOSITION_LIMIT');
      expect((error as ExpositionError).message).toMatch(message);
    }
  });

  it('never throws anything but an ExpositionError, whatever the input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.boolean(), (text, om) => {
        try {
          parseExposition(text, { format: om ? 'openmetrics' : 'prometheus-text' });
        } catch (error) {
          if (!(error instanceof ExpositionError)) throw error;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects every truncation of a valid payload that cuts a line', () => {
    const text = fixture('vllm-0.11-synthetic.prom');
    for (let cut = 1; cut < text.length; cut += 7) {
      const head = text.slice(0, cut);
      if (head.endsWith('\n')) continue;
      expect(() => parseExposition(head)).toThrow(ExpositionError);
    }
  });
});

describe('parseFloatToken', () => {
  it.each(['', '+', '-', '.', 'e5', '1e', '1e+', '0x1p3', '0b1', '1_000', '1.2.3', 'Inf1', ' 1'])(
    'rejects %j',
    (t) => {
      expect(parseFloatToken(t)).toBeUndefined();
    },
  );
  it.each([
    ['inf', Infinity],
    ['-infinity', -Infinity],
    ['nan', Number.NaN],
    ['0', 0],
    ['-0', -0],
  ])('accepts %j', (t, v) => {
    expect(parseFloatToken(t)).toBe(v);
  });
});
