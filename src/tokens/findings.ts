/**
 * Token discipline: habits that inflate token bills and KV-cache demand, found in one request.
 *
 * - `no-output-limit`: a generating request without max_tokens / max_completion_tokens /
 *   max_output_tokens; the server may generate up to the context length, and capacity planning
 *   has to assume the worst.
 * - `large-system-prompt`: system tokens (system and developer messages, instructions, tool
 *   definitions) above a threshold; they are sent, and prefilled unless prefix-cached, every time.
 * - `json-heavy-prompt`: most of the prompt is JSON that is not minified; `savingTokens` is what
 *   minifying it (JSON.stringify of the parsed value) would save, counted with the same encoding.
 * - `conversation-replay`: the request replays many earlier turns and they are most of the prompt;
 *   stateless chat resends the whole conversation, so cost grows with the square of its length.
 */
import type { PromptAnatomy } from './anatomy.ts';
import type { Tokenizer } from './encodings.ts';
import type { PromptCount } from './prompt-count.ts';
import type { TokenCounter } from './token-counter.ts';

export const FINDING_CODES = [
  'no-output-limit',
  'large-system-prompt',
  'json-heavy-prompt',
  'conversation-replay',
] as const;
export type FindingCode = (typeof FINDING_CODES)[number];

export interface Finding {
  code: FindingCode;
  message: string;
  /** Tokens the finding is about (system tokens, JSON tokens, history tokens). */
  tokens?: number;
  /** Estimated tokens a fix would save, where it can be estimated. */
  savingTokens?: number;
}

export interface DisciplineThresholds {
  /** System tokens above which `large-system-prompt` is reported. */
  systemPromptTokens: number;
  /** Share of prompt tokens in JSON from which `json-heavy-prompt` is reported (0..1). */
  jsonFraction: number;
  /** Earlier assistant turns from which `conversation-replay` is considered. */
  replayMinTurns: number;
  /** Share of prompt tokens in history from which `conversation-replay` is reported (0..1). */
  replayHistoryFraction: number;
}

export const DEFAULT_THRESHOLDS: DisciplineThresholds = {
  systemPromptTokens: 2048,
  jsonFraction: 0.5,
  replayMinTurns: 4,
  replayHistoryFraction: 0.5,
};

/** JSON shorter than this is not worth looking at (and the scan stays cheap). */
const MIN_JSON_CHARS = 64;

/**
 * Finds JSON objects and arrays in a text: the whole text, or spans that start at a line start
 * with `{` or `[` and end at the matching bracket (string-aware). Linear in the text length.
 */
export function findJsonSpans(text: string): { span: string; value: unknown }[] {
  const found: { span: string; value: unknown }[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    const atLineStart = i === 0 || text.charCodeAt(i - 1) === 10;
    if (atLineStart && (c === 123 || c === 91)) {
      const end = matchingBracket(text, i);
      if (end !== -1 && end + 1 - i >= MIN_JSON_CHARS) {
        const span = text.slice(i, end + 1);
        try {
          found.push({ span, value: JSON.parse(span) });
          i = end + 1;
          continue;
        } catch {
          // Not JSON (code, a template); keep scanning after the bracket.
        }
      }
    }
    const next = text.indexOf('\n', i);
    if (next === -1) break;
    i = next + 1;
  }
  return found;
}

function matchingBracket(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

export async function findDiscipline(
  anatomy: PromptAnatomy,
  count: PromptCount,
  tokenizer: Tokenizer,
  counter: TokenCounter,
  thresholds: DisciplineThresholds = DEFAULT_THRESHOLDS,
  options: { sync?: boolean } = {},
): Promise<Finding[]> {
  const tokensOf = (text: string) =>
    options.sync === true ? counter.countSync(tokenizer, text) : counter.count(tokenizer, text);
  const findings: Finding[] = [];
  const generating = anatomy.kind !== 'embeddings';
  if (generating && anatomy.maxOutputTokens === undefined) {
    findings.push({
      code: 'no-output-limit',
      message:
        'no max_tokens / max_completion_tokens / max_output_tokens: output may run to the context length',
    });
  }
  const system = count.components.system;
  if (system > thresholds.systemPromptTokens) {
    findings.push({
      code: 'large-system-prompt',
      message: `system prompt is ${system} tokens (threshold ${thresholds.systemPromptTokens}), sent with every request`,
      tokens: system,
    });
  }
  let jsonTokens = 0;
  let minifiedTokens = 0;
  for (const part of anatomy.texts) {
    if (!part.text.includes('{') && !part.text.includes('[')) continue;
    for (const { span, value } of findJsonSpans(part.text)) {
      jsonTokens += await tokensOf(span);
      minifiedTokens += await tokensOf(JSON.stringify(value));
    }
  }
  const saving = jsonTokens - minifiedTokens;
  if (count.totalTokens > 0 && jsonTokens / count.totalTokens >= thresholds.jsonFraction && saving > 0) {
    const share = Math.round((100 * jsonTokens) / count.totalTokens);
    findings.push({
      code: 'json-heavy-prompt',
      message: `${share}% of the prompt (${jsonTokens} tokens) is unminified JSON; minifying saves about ${saving} tokens`,
      tokens: jsonTokens,
      savingTokens: saving,
    });
  }
  const history = count.components.history;
  if (
    anatomy.historyTurns >= thresholds.replayMinTurns &&
    count.totalTokens > 0 &&
    history / count.totalTokens >= thresholds.replayHistoryFraction
  ) {
    const share = Math.round((100 * history) / count.totalTokens);
    findings.push({
      code: 'conversation-replay',
      message: `${anatomy.historyTurns} earlier turns replayed: ${history} history tokens are ${share}% of the prompt`,
      tokens: history,
    });
  }
  return findings;
}
