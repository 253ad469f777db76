import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.ts';
import { parseTraceCsv, shapeTrace } from './trace.ts';

const TIMED = 'arrival_s,input_tokens,output_tokens\n0.0,100,10\n1.5,200,20\n3.0,300,30\n';

describe('parseTraceCsv', () => {
  it('reads arrival_s,input_tokens,output_tokens', () => {
    const parsed = parseTraceCsv(TIMED);
    expect(parsed.kind).toBe('timed');
    if (parsed.kind !== 'timed') return;
    expect(parsed.requests).toEqual([
      { arrivalSeconds: 0, inputTokens: 100, outputTokens: 10 },
      { arrivalSeconds: 1.5, inputTokens: 200, outputTokens: 20 },
      { arrivalSeconds: 3, inputTokens: 300, outputTokens: 30 },
    ]);
  });

  it.each([
    [
      'columns in another order, extra columns, CRLF',
      'output_tokens,x,arrival_s,input_tokens\r\n10,a,5,100\r\n',
    ],
    ['blank lines', 'arrival_s,input_tokens,output_tokens\n\n5,100,10\n\n'],
  ])('accepts %s', (_name, text) => {
    const parsed = parseTraceCsv(text);
    if (parsed.kind !== 'timed') throw new Error('expected timed');
    // Arrivals are made relative to the first request.
    expect(parsed.requests).toEqual([{ arrivalSeconds: 0, inputTokens: 100, outputTokens: 10 }]);
  });

  it('sorts unsorted arrivals and says so; counts 0 tokens as 1', () => {
    const parsed = parseTraceCsv('arrival_s,input_tokens,output_tokens\n2,0,5\n1,10,0\n');
    if (parsed.kind !== 'timed') throw new Error('expected timed');
    expect(parsed.requests.map((r) => r.arrivalSeconds)).toEqual([0, 1]);
    expect(parsed.requests.map((r) => [r.inputTokens, r.outputTokens])).toEqual([
      [10, 1],
      [1, 5],
    ]);
    expect(parsed.notes).toEqual([
      'arrivals were not sorted; sorted by arrival_s',
      '2 token counts of 0 were counted as 1',
    ]);
  });

  it('reads a length-only file', () => {
    const parsed = parseTraceCsv(
      'num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n74,918,992,0.08\n',
    );
    expect(parsed).toEqual({ kind: 'lengths', lengths: [{ inputTokens: 74, outputTokens: 918 }], notes: [] });
  });

  it.each([
    ['a wrong header', 'time,in,out\n1,2,3\n', /header "time,in,out" is not a trace header/],
    ['no rows', 'arrival_s,input_tokens,output_tokens\n', /no requests/],
    [
      'a negative arrival',
      'arrival_s,input_tokens,output_tokens\n-1,2,3\n',
      /line 2: arrival_s "-1" is not allowed/,
    ],
    ['fractional tokens', 'arrival_s,input_tokens,output_tokens\n0,2.5,3\n', /line 2: input_tokens "2.5"/],
    ['a missing cell', 'arrival_s,input_tokens,output_tokens\n0,2,3\n1,2\n', /line 3: output_tokens ""/],
    ['text', 'arrival_s,input_tokens,output_tokens\nsoon,2,3\n', /line 2: arrival_s "soon"/],
  ])('rejects %s with the line and the value', (_name, text, message) => {
    expect(() => parseTraceCsv(text)).toThrow(InvalidInputError);
    expect(() => parseTraceCsv(text)).toThrow(message);
  });
});

describe('shapeTrace', () => {
  const file = parseTraceCsv(
    `arrival_s,input_tokens,output_tokens\n${Array.from({ length: 1000 }, (_, i) => `${i},${100 + i},${10}`).join('\n')}\n`,
  );

  it('overlays time-shifted copies within the span, the first as recorded', () => {
    const trace = shapeTrace(file, { name: 't', loadMultiplier: 3, loadMethod: 'overlay', seed: 7 });
    expect(trace.requests).toHaveLength(3000);
    const arrivals = trace.requests.map((r) => r.arrivalSeconds);
    expect(arrivals).toEqual([...arrivals].sort((a, b) => a - b));
    // The span is 999 s plus one mean gap: nothing wraps past it.
    expect(Math.max(...arrivals)).toBeLessThan(1000);
    // Every request of the file appears exactly three times.
    const perInput = new Map<number, number>();
    for (const r of trace.requests) perInput.set(r.inputTokens, (perInput.get(r.inputTokens) ?? 0) + 1);
    expect([...perInput.values()].every((n) => n === 3)).toBe(true);
    expect(trace.description).toMatch(/3 overlaid copies/);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const a = shapeTrace(file, { name: 't', loadMultiplier: 2.5, loadMethod: 'overlay', seed: 1 });
    const b = shapeTrace(file, { name: 't', loadMultiplier: 2.5, loadMethod: 'overlay', seed: 1 });
    const c = shapeTrace(file, { name: 't', loadMultiplier: 2.5, loadMethod: 'overlay', seed: 2 });
    expect(a.requests).toEqual(b.requests);
    expect(a.requests).not.toEqual(c.requests);
    // The fractional copy keeps about half of the requests.
    expect(a.requests.length).toBeGreaterThan(2400);
    expect(a.requests.length).toBeLessThan(2600);
  });

  it('compresses time by the multiplier', () => {
    const trace = shapeTrace(file, { name: 't', loadMultiplier: 4, loadMethod: 'compress', seed: 1 });
    expect(trace.requests).toHaveLength(1000);
    expect(trace.requests[999]?.arrivalSeconds).toBe(999 / 4);
    expect(trace.description).toMatch(/compressed 4x/);
  });

  it('thins below 1', () => {
    const trace = shapeTrace(file, { name: 't', loadMultiplier: 0.25, loadMethod: 'overlay', seed: 3 });
    expect(trace.requests.length).toBeGreaterThan(180);
    expect(trace.requests.length).toBeLessThan(320);
  });

  it('gives a length-only file Poisson arrivals at the rate times the multiplier', () => {
    const lengths = parseTraceCsv('num_prefill_tokens,num_decode_tokens\n10,20\n30,40\n');
    const trace = shapeTrace(lengths, {
      name: 'l',
      loadMultiplier: 2,
      loadMethod: 'overlay',
      seed: 1,
      arrivalRatePerSecond: 5,
      durationSeconds: 1000,
    });
    // 10 requests/s for 1,000 s: 10,000 +- a few standard deviations (sqrt(10,000) = 100).
    expect(trace.requests.length).toBeGreaterThan(9600);
    expect(trace.requests.length).toBeLessThan(10400);
    expect(trace.requests[0]).toMatchObject({ inputTokens: 10, outputTokens: 20 });
    expect(trace.requests[1]).toMatchObject({ inputTokens: 30, outputTokens: 40 });
    expect(trace.notes).toContain('the 2 lengths were reused in file order');
    expect(() =>
      shapeTrace(lengths, { name: 'l', loadMultiplier: 1, loadMethod: 'overlay', seed: 1 }),
    ).toThrow(/--arrival-rate: l has request lengths but no arrival times/);
  });

  it('rejects a multiplier that is not positive', () => {
    expect(() => shapeTrace(file, { name: 't', loadMultiplier: 0, loadMethod: 'overlay', seed: 1 })).toThrow(
      /--load-multiplier: 0 is not allowed/,
    );
  });
});
