/**
 * Tokenizer throughput and the gateway's cost per request, against the peers, in one run.
 *
 *   node bench/gateway-tokenizer.ts [--seconds-per-case 1.5] [--requests 300]
 *
 * Part 1, throughput (MB/s of UTF-16 text, o200k_base) on four corpora built from files installed
 * with the project (prose: package READMEs; code: JavaScript sources; json: package-lock.json;
 * multilingual: the non-ASCII messages of zod's locales): js-tiktoken as shipped, the gateway's
 * MemoTokenizer (js-tiktoken with a piece memo; "cold" starts from an empty memo), tiktoken (WASM)
 * and gpt-tokenizer. Every implementation must give the same count, or the run fails.
 *
 * Part 2, cost per request of a typical enterprise RAG prompt: a 1,800-token system prompt, 4,500
 * tokens of retrieved context (6 chunks of about 750 tokens drawn from a 200-chunk knowledge base,
 * so chunks recur as they do in production) and a 300-token question unique to each request. The
 * gateway pays for everything it does per request (JSON.parse, anatomy, count by component with
 * the segment cache, discipline findings); the peers only count the same text. Also shown: the
 * gateway without its segment cache, and with every chunk unique (no reuse at all).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { countTokens as gptTokenizerCount } from 'gpt-tokenizer/encoding/o200k_base';
import { Tiktoken } from 'js-tiktoken/lite';
import o200k from 'js-tiktoken/ranks/o200k_base';
import { get_encoding } from 'tiktoken';
import { describeRequest } from '../src/tokens/anatomy.ts';
import { CountCache } from '../src/tokens/count-cache.ts';
import { MemoTokenizer } from '../src/tokens/encodings.ts';
import { findDiscipline } from '../src/tokens/findings.ts';
import { ModelProfiles } from '../src/tokens/model-profiles.ts';
import { countPrompt } from '../src/tokens/prompt-count.ts';
import { TokenCounter } from '../src/tokens/token-counter.ts';

const { values } = parseArgs({
  options: {
    'seconds-per-case': { type: 'string', default: '1.5' },
    requests: { type: 'string', default: '300' },
  },
});
const secondsPerCase = Number(values['seconds-per-case']);
const requestCount = Number(values.requests);
const MAX_CORPUS_CHARS = 400_000;

// ---------- corpora ----------
function files(dir: string, pattern: RegExp, limit = 200): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const name of entries) {
      if (out.length >= limit) return;
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (pattern.test(name)) out.push(path);
    }
  };
  walk(dir);
  return out;
}

function take(paths: string[], transform: (text: string) => string = (t) => t): string {
  let text = '';
  for (const p of paths) {
    if (text.length >= MAX_CORPUS_CHARS) break;
    text += `${transform(readFileSync(p, 'utf8'))}\n\n`;
  }
  return text.slice(0, MAX_CORPUS_CHARS);
}

const corpora = {
  prose: take(files('node_modules', /^README\.md$/i, 400)),
  code: take([
    ...files('node_modules/prom-client/lib', /\.js$/),
    ...files('node_modules/zod/v4/core', /\.js$/),
  ]),
  json: readFileSync('package-lock.json', 'utf8').slice(0, MAX_CORPUS_CHARS),
  multilingual: take(files('node_modules/zod/v4/locales', /^[a-z-]+\.js$/i), (t) =>
    [...t.matchAll(/"([^"]*[^\p{ASCII}][^"]*)"/gu)].map((m) => m[1]).join(' '),
  ),
};

// ---------- implementations ----------
const plain = new Tiktoken(o200k);
const wasm = get_encoding('o200k_base');
const peers: Record<string, (text: string) => number> = {
  'js-tiktoken': (t) => plain.encode(t, [], []).length,
  'tiktoken (WASM)': (t) => wasm.encode_ordinary(t).length,
  'gpt-tokenizer': (t) => gptTokenizerCount(t),
};

function timeIt(fn: () => void): { runs: number; medianMs: number } {
  const samples: number[] = [];
  const deadline = performance.now() + secondsPerCase * 1000;
  do {
    const start = performance.now();
    fn();
    samples.push(performance.now() - start);
  } while (performance.now() < deadline || samples.length < 3);
  samples.sort((a, b) => a - b);
  return { runs: samples.length, medianMs: samples[Math.floor(samples.length / 2)] ?? 0 };
}

// ---------- part 1 ----------
interface ThroughputRow {
  corpus: string;
  chars: number;
  tokens: number;
  mbPerSecond: Record<string, number>;
}
const throughput: ThroughputRow[] = [];
for (const [corpus, text] of Object.entries(corpora)) {
  const counts = new Set<number>();
  const mbPerSecond: Record<string, number> = {};
  const mb = text.length / 1e6;
  for (const [name, count] of Object.entries(peers)) {
    let n = 0;
    const { medianMs } = timeIt(() => {
      n = count(text);
    });
    counts.add(n);
    mbPerSecond[name] = mb / (medianMs / 1000);
  }
  // Cold: a fresh memo for each run; warm: the memo kept across runs (a long-running gateway).
  let n = 0;
  const coldTokenizer = new MemoTokenizer('o200k_base', o200k);
  const cold = timeIt(() => {
    coldTokenizer.resetMemo();
    n = coldTokenizer.count(text);
  });
  counts.add(n);
  const warmTokenizer = new MemoTokenizer('o200k_base', o200k);
  const warm = timeIt(() => {
    n = warmTokenizer.count(text);
  });
  counts.add(n);
  mbPerSecond['gateway memo (cold)'] = mb / (cold.medianMs / 1000);
  mbPerSecond['gateway memo (warm)'] = mb / (warm.medianMs / 1000);
  if (counts.size !== 1)
    throw new Error(`${corpus}: implementations disagree on the count: ${[...counts].join(', ')}`);
  throughput.push({ corpus, chars: text.length, tokens: n, mbPerSecond });
}

// ---------- part 2 ----------
const words = corpora.prose.split(/\s+/).filter((w) => /^[A-Za-z][a-z]+$/.test(w));
let wordCursor = 0;
/** English-like text of about `tokens` tokens, built from corpus words (distinct each call). */
function textOf(tokens: number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < tokens) {
    const sentence: string[] = [];
    for (let i = 0; i < 14; i++) sentence.push(words[wordCursor++ % words.length] ?? 'word');
    const s = `${sentence.join(' ')}. `;
    parts.push(s);
    n += plain.encode(s, [], []).length;
  }
  return parts.join('');
}

const system = Array.from({ length: 6 }, (_, i) => `## Policy section ${i + 1}\n\n${textOf(300)}`).join(
  '\n\n',
);
const knowledgeBase = Array.from({ length: 200 }, (_, i) => `[doc ${i}] ${textOf(750)}`);
let seed = 42;
const random = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
};
/** Retrieval favours popular documents: index = floor(200 x u^2) skews towards the head. */
const pickChunk = () => knowledgeBase[Math.floor(knowledgeBase.length * random() ** 2)] ?? '';

function enterpriseRequest(uniqueContext: boolean): string {
  const chunks = Array.from({ length: 6 }, () => (uniqueContext ? `[doc new] ${textOf(750)}` : pickChunk()));
  return JSON.stringify({
    model: 'gpt-4o',
    max_tokens: 400,
    messages: [
      { role: 'system', content: system },
      { role: 'user', content: `<context>\n${chunks.join('\n\n')}\n</context>\n\nQuestion: ${textOf(300)}` },
    ],
  });
}

const requestsTypical = Array.from({ length: requestCount }, () => enterpriseRequest(false));
const requestsUnique = Array.from({ length: Math.min(requestCount, 100) }, () => enterpriseRequest(true));
const promptText = (body: string) =>
  (JSON.parse(body) as { messages: { content: string }[] }).messages.map((m) => m.content).join('\n');

const profiles = new ModelProfiles();
const profile = profiles.resolve('gpt-4o');
async function gatewayCost(requests: string[], cacheEntries: number, warmup: number) {
  const tokenizer = new MemoTokenizer('o200k_base', o200k);
  const counter = new TokenCounter({ cache: new CountCache(cacheEntries), sliceBudgetMs: 1e9 });
  const perRequest = async (body: string) => {
    const anatomy = describeRequest('chat', JSON.parse(body));
    if (anatomy === undefined) throw new Error('no anatomy');
    const count = await countPrompt(anatomy, profile, tokenizer, counter);
    await findDiscipline(anatomy, count, tokenizer, counter);
    return count.totalTokens;
  };
  for (const body of requests.slice(0, warmup)) await perRequest(body);
  const measured = requests.slice(warmup);
  const start = performance.now();
  let tokens = 0;
  for (const body of measured) tokens += await perRequest(body);
  const ms = performance.now() - start;
  return {
    usPerRequest: (1000 * ms) / measured.length,
    tokensPerRequest: tokens / measured.length,
    hitRate: counter.cache.hits / Math.max(1, counter.cache.hits + counter.cache.misses),
  };
}

function peerCost(requests: string[], count: (t: string) => number, warmup: number) {
  const texts = requests.map(promptText);
  for (const t of texts.slice(0, warmup)) count(t);
  const measured = texts.slice(warmup);
  const start = performance.now();
  for (const t of measured) count(t);
  return { usPerRequest: (1000 * (performance.now() - start)) / measured.length };
}

const warmup = Math.floor(requestCount / 3);
const typical = await gatewayCost(requestsTypical, 10_000, warmup);
const noCache = await gatewayCost(requestsTypical, 0, warmup);
const unique = await gatewayCost(requestsUnique, 10_000, 10);
const peerTypical: Record<string, number> = {};
const peerUnique: Record<string, number> = {};
for (const [name, count] of Object.entries(peers)) {
  peerTypical[name] = peerCost(requestsTypical, count, warmup).usPerRequest;
  peerUnique[name] = peerCost(requestsUnique, count, 10).usPerRequest;
}
const fastestPeer = Object.entries(peerTypical).sort((a, b) => a[1] - b[1])[0] ?? ['none', Number.NaN];

// ---------- report ----------
const names = Object.keys(throughput[0]?.mbPerSecond ?? {});
const pad = (s: string | number, n: number) => String(s).padStart(n);
console.log('\nTokenizer throughput, o200k_base, MB/s (median of runs over %s s each)\n', secondsPerCase);
console.log(
  `${'corpus'.padEnd(13)}${pad('chars', 9)}${pad('tokens', 9)}${names.map((n) => pad(n, 21)).join('')}`,
);
for (const row of throughput) {
  console.log(
    `${row.corpus.padEnd(13)}${pad(row.chars, 9)}${pad(row.tokens, 9)}${names.map((n) => pad((row.mbPerSecond[n] ?? 0).toFixed(2), 21)).join('')}`,
  );
}
console.log(
  `\nCost per request, enterprise RAG prompt (~${Math.round(typical.tokensPerRequest)} tokens), microseconds`,
);
console.log(`${'implementation'.padEnd(44)}${pad('recurring chunks', 18)}${pad('all unique', 12)}`);
console.log(
  `${'gateway: parse + anatomy + count + findings'.padEnd(44)}${pad(typical.usPerRequest.toFixed(0), 18)}${pad(unique.usPerRequest.toFixed(0), 12)}`,
);
console.log(
  `${'gateway without the segment cache'.padEnd(44)}${pad(noCache.usPerRequest.toFixed(0), 18)}${pad('', 12)}`,
);
for (const name of Object.keys(peers)) {
  console.log(
    `${`${name}: count only`.padEnd(44)}${pad((peerTypical[name] ?? 0).toFixed(0), 18)}${pad((peerUnique[name] ?? 0).toFixed(0), 12)}`,
  );
}
const ratio = fastestPeer[1] / typical.usPerRequest;
console.log(
  `\nsegment cache hit rate ${(100 * typical.hitRate).toFixed(1)}%; gateway vs fastest peer (${fastestPeer[0]}): ${ratio.toFixed(2)}x ${ratio >= 1 ? 'faster (target met)' : 'slower (TARGET MISSED)'}`,
);
console.log(
  JSON.stringify({
    bench: 'gateway-tokenizer',
    encoding: 'o200k_base',
    throughputMBps: Object.fromEntries(throughput.map((r) => [r.corpus, r.mbPerSecond])),
    enterpriseRequestMicros: {
      gateway: typical.usPerRequest,
      gatewayNoCache: noCache.usPerRequest,
      gatewayUniqueContext: unique.usPerRequest,
      peers: peerTypical,
      peersUniqueContext: peerUnique,
    },
    cacheHitRate: typical.hitRate,
    fastestPeer: fastestPeer[0],
    speedupVsFastestPeer: ratio,
    targetMet: ratio >= 1,
  }),
);
wasm.free();
if (ratio < 1) process.exitCode = 1;
