/**
 * Keeps the `model` label bounded: clients choose model names, and every new name would otherwise
 * create a new series in every gateway metric. With an allow-list, listed names keep their label
 * and everything else is "other". Without one, the first `maxLabels` names seen keep theirs (a
 * gateway normally fronts a handful of models, so these are the busy ones) and later names are
 * "other". Requests without a model are "unknown".
 */
export const OTHER_MODEL = 'other';
export const UNKNOWN_MODEL = 'unknown';

/** Names longer than this are never labels (they are more likely junk than a deployment). */
const MAX_LABEL_CHARS = 128;

export class ModelLabeler {
  readonly #allowed: ReadonlySet<string> | undefined;
  readonly #maxLabels: number;
  readonly #seen = new Set<string>();

  constructor(options: { allowList?: readonly string[]; maxLabels: number }) {
    this.#allowed = options.allowList === undefined ? undefined : new Set(options.allowList);
    this.#maxLabels = options.maxLabels;
  }

  label(model: string | undefined): string {
    if (model === undefined || model.length === 0) return UNKNOWN_MODEL;
    if (this.#allowed !== undefined) return this.#allowed.has(model) ? model : OTHER_MODEL;
    if (this.#seen.has(model)) return model;
    if (model.length > MAX_LABEL_CHARS || this.#seen.size >= this.#maxLabels) return OTHER_MODEL;
    this.#seen.add(model);
    return model;
  }
}
