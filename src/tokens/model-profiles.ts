/**
 * What the gateway and `tokenscaler count` need to know about a model to count its prompts: which
 * encoding, how many tokens the chat template adds, and how images are priced. Built-in rules cover
 * OpenAI models (whose encodings js-tiktoken ships); every other model is counted with a default
 * encoding and flagged `exactTokenizer: false`, and the upstream's `usage` corrects the totals when
 * it arrives. A profiles file (`--model-profiles`) overrides any of it per model name pattern.
 */
import { z } from 'zod';
import { ENCODING_NAMES, type EncodingName } from './encodings.ts';
import { DEFAULT_IMAGE_TOKENS, type ImageTokenRule } from './image-tokens.ts';

export interface ChatTemplateOverhead {
  /** Tokens the template wraps around every message (role markers, separators). */
  tokensPerMessage: number;
  /** Extra tokens when a message carries a `name`. */
  tokensPerName: number;
  /** Tokens that prime the reply (the assistant header), added once per request. */
  tokensPerReply: number;
}

export interface ModelProfile {
  encoding: EncodingName;
  /** True when the encoding is the model's own tokenizer, so counts are exact, not estimates. */
  exactTokenizer: boolean;
  chatTemplate: ChatTemplateOverhead;
  image: ImageTokenRule;
}

/**
 * OpenAI's published rule for chat models (openai-cookbook "How to count tokens with tiktoken"):
 * every message adds 3 tokens (`<|start|>{role}<|message|>…<|end|>`), a name adds 1, and the
 * reply is primed with 3 (`<|start|>assistant<|message|>`).
 */
export const OPENAI_CHAT_TEMPLATE: ChatTemplateOverhead = {
  tokensPerMessage: 3,
  tokensPerName: 1,
  tokensPerReply: 3,
};

/**
 * Llama 3 chat template: `<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>` is 5
 * tokens around each message; `<|begin_of_text|>` plus the assistant header prime the reply (1 + 4).
 */
export const LLAMA3_CHAT_TEMPLATE: ChatTemplateOverhead = {
  tokensPerMessage: 5,
  tokensPerName: 0,
  tokensPerReply: 5,
};

/** gpt-4o-mini prices an image like gpt-4o but with larger base and tile costs (OpenAI pricing page). */
const GPT_4O_MINI_IMAGE: ImageTokenRule = {
  ...DEFAULT_IMAGE_TOKENS,
  lowDetailTokens: 2833,
  baseTokens: 2833,
  tileTokens: 5667,
};

/** Strips a provider or organisation prefix: "openai/gpt-4o" and "meta-llama/Llama-3.1-8B" keep the last part. */
function baseName(model: string): string {
  const slash = model.lastIndexOf('/');
  return (slash === -1 ? model : model.slice(slash + 1)).toLowerCase();
}

const O200K_MODELS = /^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o1|o3|o4|codex-)/;
const CL100K_MODELS = /^(gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada-002)/;

/** The built-in profile for a model name, before any override. */
export function builtInProfile(model: string | undefined, defaultEncoding: EncodingName): ModelProfile {
  const name = model === undefined ? '' : baseName(model);
  let encoding = defaultEncoding;
  let exactTokenizer = false;
  if (O200K_MODELS.test(name)) {
    encoding = 'o200k_base';
    exactTokenizer = true;
  } else if (CL100K_MODELS.test(name)) {
    encoding = 'cl100k_base';
    exactTokenizer = true;
  }
  const chatTemplate = name.includes('llama-3') ? LLAMA3_CHAT_TEMPLATE : OPENAI_CHAT_TEMPLATE;
  const image = name.startsWith('gpt-4o-mini') ? GPT_4O_MINI_IMAGE : DEFAULT_IMAGE_TOKENS;
  return { encoding, exactTokenizer, chatTemplate: { ...chatTemplate }, image: { ...image } };
}

const nonNegativeInt = z.number().int().min(0);
const positiveInt = z.number().int().min(1);

const ModelProfileOverrideSchema = z
  .object({
    /** Model name patterns; `*` matches any run of characters; matching ignores case. */
    match: z.array(z.string().min(1)).min(1),
    encoding: z.enum(ENCODING_NAMES).optional(),
    /** Set when the encoding is known to be the model's own tokenizer (e.g. a fine-tune of gpt-4o). */
    exactTokenizer: z.boolean().optional(),
    chatTemplate: z
      .object({
        tokensPerMessage: nonNegativeInt,
        tokensPerName: nonNegativeInt,
        tokensPerReply: nonNegativeInt,
      })
      .partial()
      .strict()
      .optional(),
    image: z
      .object({
        lowDetailTokens: nonNegativeInt,
        baseTokens: nonNegativeInt,
        tileTokens: nonNegativeInt,
        tilePixels: positiveInt,
        maxSidePixels: positiveInt,
        shortSidePixels: positiveInt.nullable(),
        defaultWidthPixels: positiveInt,
        defaultHeightPixels: positiveInt,
      })
      .partial()
      .strict()
      .optional(),
  })
  .strict();

export const ModelProfilesFileSchema = z
  .object({
    /** Encoding for models no rule recognises. */
    defaultEncoding: z.enum(ENCODING_NAMES).optional(),
    models: z.array(ModelProfileOverrideSchema).default([]),
  })
  .strict();

export type ModelProfileOverride = z.infer<typeof ModelProfileOverrideSchema>;
export type ModelProfilesFile = z.infer<typeof ModelProfilesFileSchema>;

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`, 'i');
}

/**
 * Resolves model names to profiles: the first override whose pattern matches the full name (or
 * the name without its provider prefix) wins, layered on the built-in profile. Results are
 * memoised per name; the number of names is bounded by the caller (the gateway only resolves
 * names it has admitted as labels, others share one "other" profile lookup per request).
 */
export class ModelProfiles {
  readonly defaultEncoding: EncodingName;
  readonly #overrides: { patterns: RegExp[]; override: ModelProfileOverride }[];
  readonly #memo = new Map<string, ModelProfile>();
  readonly #maxMemo: number;

  constructor(
    file: ModelProfilesFile = { models: [] },
    defaultEncoding: EncodingName = 'o200k_base',
    maxMemo = 1024,
  ) {
    this.defaultEncoding = file.defaultEncoding ?? defaultEncoding;
    this.#overrides = file.models.map((override) => ({
      patterns: override.match.map(globToRegExp),
      override,
    }));
    this.#maxMemo = maxMemo;
  }

  /** Every encoding some model may need, so a server can load them before it reports ready. */
  encodingsInUse(): EncodingName[] {
    const set = new Set<EncodingName>([this.defaultEncoding, 'o200k_base', 'cl100k_base']);
    for (const { override } of this.#overrides)
      if (override.encoding !== undefined) set.add(override.encoding);
    return [...set];
  }

  resolve(model: string | undefined): ModelProfile {
    const key = model ?? '';
    const known = this.#memo.get(key);
    if (known !== undefined) return known;
    const profile = this.#build(model);
    if (this.#memo.size >= this.#maxMemo) this.#memo.clear();
    this.#memo.set(key, profile);
    return profile;
  }

  #build(model: string | undefined): ModelProfile {
    const profile = builtInProfile(model, this.defaultEncoding);
    if (model === undefined) return profile;
    const short = baseName(model);
    const found = this.#overrides.find(({ patterns }) =>
      patterns.some((p) => p.test(model) || p.test(short)),
    );
    if (found === undefined) return profile;
    const { override } = found;
    if (override.encoding !== undefined) {
      profile.encoding = override.encoding;
      profile.exactTokenizer = override.exactTokenizer ?? false;
    } else if (override.exactTokenizer !== undefined) {
      profile.exactTokenizer = override.exactTokenizer;
    }
    Object.assign(profile.chatTemplate, override.chatTemplate);
    Object.assign(profile.image, override.image);
    return profile;
  }
}
