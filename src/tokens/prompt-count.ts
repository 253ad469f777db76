import type { PromptAnatomy, PromptComponent } from './anatomy.ts';
import { PROMPT_COMPONENTS } from './anatomy.ts';
import type { Tokenizer } from './encodings.ts';
import { imageTokens } from './image-tokens.ts';
import type { ModelProfile } from './model-profiles.ts';
import type { TokenCounter } from './token-counter.ts';

export type ComponentTokens = Record<PromptComponent, number>;

export interface PromptCount {
  totalTokens: number;
  /** Tokens per component; they add up to totalTokens. */
  components: ComponentTokens;
  encoding: Tokenizer['encoding'];
  /** False when the encoding only approximates the model's tokenizer. */
  exactTokenizer: boolean;
}

export function emptyComponents(): ComponentTokens {
  return { system: 0, history: 0, user: 0, tool: 0, image: 0, template: 0 };
}

/**
 * Template tokens: per message, per name, and the reply primer. Worked example with OpenAI's rule
 * (3, 1, 3): a system and a user message, no names, cost 3 x 2 + 3 = 9 tokens on top of the text.
 */
export function templateTokens(anatomy: PromptAnatomy, profile: ModelProfile): number {
  if (anatomy.templatedMessages === 0) return 0;
  const t = profile.chatTemplate;
  return (
    t.tokensPerMessage * anatomy.templatedMessages +
    t.tokensPerName * anatomy.namedMessages +
    t.tokensPerReply
  );
}

/**
 * Counts a prompt by component. Each text part is counted whole (so totals are exact for the
 * encoding); retrieved-context spans are counted on their own and moved from their part's
 * component to `tool`, never more than the part holds.
 */
export async function countPrompt(
  anatomy: PromptAnatomy,
  profile: ModelProfile,
  tokenizer: Tokenizer,
  counter: TokenCounter,
  options: { sync?: boolean } = {},
): Promise<PromptCount> {
  const count = (text: string) =>
    options.sync === true ? counter.countSync(tokenizer, text) : counter.count(tokenizer, text);
  const components = emptyComponents();
  const partTokens: number[] = [];
  for (const part of anatomy.texts) {
    const tokens = await count(part.text);
    partTokens.push(tokens);
    components[part.component] += tokens;
  }
  const movedByPart = new Map<number, number>();
  for (const span of anatomy.retrieved) {
    const available = (partTokens[span.partIndex] ?? 0) - (movedByPart.get(span.partIndex) ?? 0);
    const moved = Math.min(available, await count(span.text));
    const part = anatomy.texts[span.partIndex];
    if (part === undefined || moved <= 0) continue;
    movedByPart.set(span.partIndex, (movedByPart.get(span.partIndex) ?? 0) + moved);
    components[part.component] -= moved;
    components.tool += moved;
  }
  components.user += anatomy.tokenIdCount;
  for (const image of anatomy.images)
    components.image += imageTokens(profile.image, image.size, image.detail);
  components.template = templateTokens(anatomy, profile);
  let totalTokens = 0;
  for (const c of PROMPT_COMPONENTS) totalTokens += components[c];
  return { totalTokens, components, encoding: tokenizer.encoding, exactTokenizer: profile.exactTokenizer };
}

/**
 * Rescales component counts so they add up to a total reported by the upstream (its `usage`),
 * keeping their proportions; rounding goes by largest remainder so the sum is exact. Worked
 * example: estimates {system: 300, user: 100} against a reported 500 become {system: 375, user: 125}.
 * With no estimate at all, the whole reported total goes to `fallback`.
 */
export function scaleComponents(
  components: ComponentTokens,
  reportedTotal: number,
  fallback: PromptComponent = 'user',
): ComponentTokens {
  let estimated = 0;
  for (const c of PROMPT_COMPONENTS) estimated += components[c];
  const scaled = emptyComponents();
  if (estimated === 0) {
    scaled[fallback] = reportedTotal;
    return scaled;
  }
  const remainders: { c: PromptComponent; r: number }[] = [];
  let assigned = 0;
  for (const c of PROMPT_COMPONENTS) {
    const exact = (components[c] * reportedTotal) / estimated;
    scaled[c] = Math.floor(exact);
    assigned += scaled[c];
    remainders.push({ c, r: exact - scaled[c] });
  }
  remainders.sort((x, y) => y.r - x.r);
  for (let i = 0; assigned < reportedTotal; i++, assigned++) {
    const target = remainders[i % remainders.length];
    if (target !== undefined) scaled[target.c]++;
  }
  return scaled;
}
