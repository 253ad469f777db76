/**
 * Prompt anatomy: which parts of an OpenAI-compatible request body are system prompt, earlier
 * turns, the user's question, tool results or retrieved context, and images. Pure: no counting
 * here, only the texts and facts the counter and the discipline findings need.
 *
 * Components (the `component` label of `tokenscaler_gateway_tokens_total`):
 * - `system`: system and developer messages, Responses `instructions`, tool (function) definitions
 *   and response schemas, which repeat on every request of an application;
 * - `history`: every user and assistant message before the last user message, and assistant
 *   messages after it (an agent's earlier steps in the current turn);
 * - `user`: the last user message; for completions and embeddings, the whole input;
 * - `tool`: tool and function results, and retrieved context: spans of system or user text inside
 *   `<context>`, `<document>`, `<documents>`, `<retrieved_context>`, `<search_results>` or
 *   `<sources>` tags (context pasted without such a tag is counted where it sits);
 * - `image`: image inputs, by the tile formula of `image-tokens.ts`;
 * - `template`: the chat template's tokens around messages (counted in `prompt-count.ts`).
 *
 * Parsing is lenient on purpose: the gateway forwards whatever the client sent and the upstream
 * judges it; fields of unexpected shape are skipped, and a body that is not an object of the
 * expected kind yields `undefined` (no estimate) rather than an error.
 */
import { z } from 'zod';
import { dataUrlImageSize, type ImageDetail, type ImageSize } from './image-tokens.ts';

export const PROMPT_COMPONENTS = ['system', 'history', 'user', 'tool', 'image', 'template'] as const;
export type PromptComponent = (typeof PROMPT_COMPONENTS)[number];

export const ENDPOINT_KINDS = ['chat', 'completions', 'responses', 'embeddings'] as const;
export type EndpointKind = (typeof ENDPOINT_KINDS)[number];

export interface TextPart {
  component: Exclude<PromptComponent, 'image' | 'template'>;
  text: string;
}

export interface ImagePart {
  detail: ImageDetail;
  /** Read from a data: URL's header; undefined for remote URLs. */
  size: ImageSize | undefined;
}

export interface PromptAnatomy {
  kind: EndpointKind;
  model: string | undefined;
  texts: TextPart[];
  /** Retrieved-context spans: text inside `texts[partIndex]` that counts as `tool`. */
  retrieved: { partIndex: number; text: string }[];
  /** Prompt given as token ids (completions and embeddings accept them): counted as is. */
  tokenIdCount: number;
  images: ImagePart[];
  /** Messages the chat template wraps (0 for completions and embeddings). */
  templatedMessages: number;
  /** Messages that carry a `name`. */
  namedMessages: number;
  /** Assistant messages before the last user message: completed earlier turns sent again. */
  historyTurns: number;
  /** The client's output limit (max_tokens, max_completion_tokens or max_output_tokens). */
  maxOutputTokens: number | undefined;
  /** Completions per prompt (`n`), each generating its own output. */
  choices: number;
  stream: boolean;
  /** Whether a streaming client asked for the final usage chunk itself. */
  streamIncludeUsage: boolean;
}

export function endpointKind(path: string): EndpointKind | undefined {
  const bare = path.split('?', 1)[0] ?? path;
  const trimmed = bare.endsWith('/') ? bare.slice(0, -1) : bare;
  if (trimmed.endsWith('/chat/completions')) return 'chat';
  if (trimmed.endsWith('/completions')) return 'completions';
  if (trimmed.endsWith('/responses')) return 'responses';
  if (trimmed.endsWith('/embeddings')) return 'embeddings';
  return undefined;
}

const RETRIEVED_TAG =
  /<(context|documents?|retrieved[_-]context|search[_-]results|sources)(?:\s[^>]*)?>([\s\S]*?)<\/\1\s*>/gi;

const maybeInt = z.number().int().nonnegative().optional().catch(undefined);
const maybeBool = z.boolean().optional().catch(undefined);
const maybeString = z.string().optional().catch(undefined);

const CommonFields = z.looseObject({
  model: maybeString,
  stream: maybeBool,
  stream_options: z.looseObject({ include_usage: maybeBool }).optional().catch(undefined),
  n: maybeInt,
  max_tokens: maybeInt,
  max_completion_tokens: maybeInt,
  max_output_tokens: maybeInt,
});

interface Builder {
  anatomy: PromptAnatomy;
  lastUserIndex: number;
}

function newAnatomy(kind: EndpointKind, body: z.infer<typeof CommonFields>): PromptAnatomy {
  return {
    kind,
    model: body.model,
    texts: [],
    retrieved: [],
    tokenIdCount: 0,
    images: [],
    templatedMessages: 0,
    namedMessages: 0,
    historyTurns: 0,
    maxOutputTokens: body.max_completion_tokens ?? body.max_tokens ?? body.max_output_tokens,
    choices: Math.max(1, body.n ?? 1),
    stream: body.stream === true,
    streamIncludeUsage: body.stream_options?.include_usage === true,
  };
}

function addText(
  a: PromptAnatomy,
  component: TextPart['component'],
  text: string,
  scanRetrieved: boolean,
): void {
  if (text.length === 0) return;
  const partIndex = a.texts.push({ component, text }) - 1;
  if (!scanRetrieved || component === 'tool' || !text.includes('<')) return;
  for (const match of text.matchAll(RETRIEVED_TAG)) {
    const inner = match[2];
    if (inner !== undefined && inner.trim().length > 0) a.retrieved.push({ partIndex, text: inner });
  }
}

function imageDetail(value: unknown): ImageDetail {
  return value === 'low' || value === 'high' ? value : 'auto';
}

function addImage(a: PromptAnatomy, url: unknown, detail: unknown): void {
  a.images.push({
    detail: imageDetail(detail),
    size: typeof url === 'string' ? dataUrlImageSize(url) : undefined,
  });
}

/** Adds a content value: a string, or an array of typed parts (text, image, file, refusal...). */
function addContent(
  a: PromptAnatomy,
  component: TextPart['component'],
  content: unknown,
  scan: boolean,
): void {
  if (typeof content === 'string') {
    addText(a, component, content, scan);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const part of content) {
    if (typeof part === 'string') {
      addText(a, component, part, scan);
      continue;
    }
    if (part === null || typeof part !== 'object') continue;
    const p = part as Record<string, unknown>;
    if (typeof p['text'] === 'string') addText(a, component, p['text'], scan);
    else if (typeof p['refusal'] === 'string') addText(a, component, p['refusal'], scan);
    if (p['type'] === 'image_url') {
      const image = p['image_url'];
      if (typeof image === 'string') addImage(a, image, undefined);
      else if (image !== null && typeof image === 'object') {
        const i = image as Record<string, unknown>;
        addImage(a, i['url'], i['detail']);
      }
    } else if (p['type'] === 'input_image') {
      addImage(a, p['image_url'], p['detail']);
    }
  }
}

function roleComponent(role: unknown, index: number, lastUserIndex: number): TextPart['component'] {
  if (role === 'system' || role === 'developer') return 'system';
  if (role === 'tool' || role === 'function') return 'tool';
  if (role === 'user' && index === lastUserIndex) return 'user';
  return 'history';
}

function lastIndexWhere(
  items: readonly unknown[],
  predicate: (item: Record<string, unknown>) => boolean,
): number {
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i];
    if (item !== null && typeof item === 'object' && predicate(item as Record<string, unknown>)) return i;
  }
  return -1;
}

/** Chat messages and Responses input messages share roles, content and tool calls. */
function addMessages(b: Builder, messages: readonly unknown[]): void {
  const a = b.anatomy;
  messages.forEach((raw, index) => {
    if (raw === null || typeof raw !== 'object') return;
    const m = raw as Record<string, unknown>;
    const type = m['type'];
    if (type === 'function_call_output' || type === 'custom_tool_call_output') {
      a.templatedMessages++;
      addContent(
        a,
        'tool',
        typeof m['output'] === 'string' ? m['output'] : JSON.stringify(m['output'] ?? ''),
        false,
      );
      return;
    }
    if (type === 'function_call' || type === 'custom_tool_call') {
      a.templatedMessages++;
      addText(a, 'history', `${String(m['name'] ?? '')}${String(m['arguments'] ?? m['input'] ?? '')}`, false);
      return;
    }
    if (type === 'reasoning') {
      const summary = m['summary'];
      if (Array.isArray(summary)) addContent(a, 'history', summary, false);
      return;
    }
    const role = m['role'];
    if (role === undefined) return;
    const component = roleComponent(role, index, b.lastUserIndex);
    a.templatedMessages++;
    if (typeof m['name'] === 'string' && m['name'].length > 0) {
      a.namedMessages++;
      addText(a, component, m['name'], false);
    }
    if (role === 'assistant' && index < b.lastUserIndex) a.historyTurns++;
    addContent(a, component, m['content'], component === 'system' || component === 'user');
    for (const call of Array.isArray(m['tool_calls']) ? m['tool_calls'] : []) {
      if (call === null || typeof call !== 'object') continue;
      const fn = (call as Record<string, unknown>)['function'];
      if (fn !== null && typeof fn === 'object') {
        const f = fn as Record<string, unknown>;
        addText(a, component, `${String(f['name'] ?? '')}${String(f['arguments'] ?? '')}`, false);
      }
    }
    const legacyCall = m['function_call'];
    if (legacyCall !== null && typeof legacyCall === 'object') {
      const f = legacyCall as Record<string, unknown>;
      addText(a, component, `${String(f['name'] ?? '')}${String(f['arguments'] ?? '')}`, false);
    }
  });
}

/** Tool definitions and response schemas: fixed per application, counted with the system prompt. */
function addDefinitions(a: PromptAnatomy, body: Record<string, unknown>): void {
  for (const key of ['tools', 'functions']) {
    const value = body[key];
    if (Array.isArray(value) && value.length > 0) addText(a, 'system', JSON.stringify(value), false);
  }
  const format = body['response_format'];
  if (format !== null && typeof format === 'object' && 'json_schema' in format) {
    addText(a, 'system', JSON.stringify((format as Record<string, unknown>)['json_schema']), false);
  }
}

/** Prompt given as a string, strings, token ids or lists of token ids (completions, embeddings). */
function addPromptInput(a: PromptAnatomy, input: unknown): void {
  if (typeof input === 'string') {
    addText(a, 'user', input, false);
    return;
  }
  if (!Array.isArray(input)) return;
  for (const item of input) {
    if (typeof item === 'string') addText(a, 'user', item, false);
    else if (typeof item === 'number') a.tokenIdCount++;
    else if (Array.isArray(item)) a.tokenIdCount += item.length;
  }
}

/** The anatomy of a request body, or undefined when the body is not a request of that kind. */
export function describeRequest(kind: EndpointKind, body: unknown): PromptAnatomy | undefined {
  const parsed = CommonFields.safeParse(body);
  if (!parsed.success) return undefined;
  const raw = body as Record<string, unknown>;
  const a = newAnatomy(kind, parsed.data);
  switch (kind) {
    case 'chat': {
      const messages = raw['messages'];
      if (!Array.isArray(messages)) return undefined;
      addDefinitions(a, raw);
      addMessages(
        { anatomy: a, lastUserIndex: lastIndexWhere(messages, (m) => m['role'] === 'user') },
        messages,
      );
      return a;
    }
    case 'responses': {
      if (typeof raw['instructions'] === 'string') {
        a.templatedMessages++;
        addText(a, 'system', raw['instructions'], true);
      }
      addDefinitions(a, raw);
      const input = raw['input'];
      if (typeof input === 'string') {
        a.templatedMessages++;
        addText(a, 'user', input, true);
      } else if (Array.isArray(input)) {
        const lastUserIndex = lastIndexWhere(input, (m) => m['role'] === 'user');
        addMessages({ anatomy: a, lastUserIndex }, input);
      } else {
        return undefined;
      }
      return a;
    }
    case 'completions':
      if (raw['prompt'] === undefined) return undefined;
      addPromptInput(a, raw['prompt']);
      return a;
    case 'embeddings':
      if (raw['input'] === undefined) return undefined;
      addPromptInput(a, raw['input']);
      a.maxOutputTokens = 0;
      return a;
  }
}
