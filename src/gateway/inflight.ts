import type { GatewayMetrics } from './metrics.ts';

/**
 * One request's contribution to the in-flight gauges. Every increment is remembered and `finish`
 * subtracts exactly what was added, once, whichever way the request ends (completed, upstream
 * error, client cancellation, timeout), so the gauges return to zero.
 *
 * In-flight tokens = prompt + max(expected output, output produced so far): a request that outgrows
 * its expectation (expected from a P95) keeps counting what it really holds.
 */
export class InflightTally {
  readonly #metrics: GatewayMetrics;
  readonly #labels: { model: string };
  #promptTokens = 0;
  #expectedOutputTokens = 0;
  #producedTokens = 0;
  #tokensAdded = 0;
  #waitingAdded = 0;
  #firstToken = false;
  #finished = false;

  constructor(metrics: GatewayMetrics, model: string) {
    this.#metrics = metrics;
    this.#labels = { model };
    metrics.touch(model);
    metrics.inflightRequests.inc(this.#labels);
  }

  get finished(): boolean {
    return this.#finished;
  }

  get firstTokenSeen(): boolean {
    return this.#firstToken;
  }

  /** Sets the prompt count and expected output once known; replaces earlier values. */
  setPrompt(promptTokens: number, expectedOutputTokens: number): void {
    if (this.#finished) return;
    this.#promptTokens = promptTokens;
    this.#expectedOutputTokens = expectedOutputTokens;
    this.#syncTokens();
    if (!this.#firstToken) this.#setWaiting(promptTokens);
  }

  firstToken(): void {
    if (this.#finished || this.#firstToken) return;
    this.#firstToken = true;
    this.#setWaiting(0);
  }

  /** Output produced so far (an estimate while streaming). */
  produced(outputTokens: number): void {
    if (this.#finished || outputTokens <= this.#producedTokens) return;
    this.#producedTokens = outputTokens;
    if (outputTokens > this.#expectedOutputTokens) this.#syncTokens();
  }

  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#metrics.inflightRequests.dec(this.#labels);
    if (this.#tokensAdded !== 0) this.#metrics.inflightTokens.dec(this.#labels, this.#tokensAdded);
    if (this.#waitingAdded !== 0) this.#metrics.waitingTokens.dec(this.#labels, this.#waitingAdded);
    this.#tokensAdded = 0;
    this.#waitingAdded = 0;
  }

  #syncTokens(): void {
    const target = this.#promptTokens + Math.max(this.#expectedOutputTokens, this.#producedTokens);
    const delta = target - this.#tokensAdded;
    if (delta !== 0) this.#metrics.inflightTokens.inc(this.#labels, delta);
    this.#tokensAdded = target;
  }

  #setWaiting(tokens: number): void {
    const delta = tokens - this.#waitingAdded;
    if (delta !== 0) this.#metrics.waitingTokens.inc(this.#labels, delta);
    this.#waitingAdded = tokens;
  }
}
