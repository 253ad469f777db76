/**
 * Recent output lengths per model label, to expect an output size for requests that set no limit.
 * A ring of the last `windowSize` outputs per label (labels are bounded by ModelLabeler), with the
 * P95 recomputed lazily after new observations. Worked example: outputs 1..100 give a P95 of 95
 * (nearest rank: ceil(0.95 x 100) = the 95th smallest).
 */
export class OutputStats {
  readonly #windowSize: number;
  readonly #rings = new Map<string, { values: number[]; next: number; p95: number | undefined }>();

  constructor(windowSize = 512) {
    this.#windowSize = windowSize;
  }

  observe(label: string, outputTokens: number): void {
    let ring = this.#rings.get(label);
    if (ring === undefined) {
      ring = { values: [], next: 0, p95: undefined };
      this.#rings.set(label, ring);
    }
    if (ring.values.length < this.#windowSize) ring.values.push(outputTokens);
    else ring.values[ring.next] = outputTokens;
    ring.next = (ring.next + 1) % this.#windowSize;
    ring.p95 = undefined;
  }

  count(label: string): number {
    return this.#rings.get(label)?.values.length ?? 0;
  }

  /** P95 of the recent outputs of that label; undefined without observations. */
  p95(label: string): number | undefined {
    const ring = this.#rings.get(label);
    if (ring === undefined || ring.values.length === 0) return undefined;
    if (ring.p95 === undefined) {
      const sorted = [...ring.values].sort((a, b) => a - b);
      ring.p95 = sorted[Math.ceil(0.95 * sorted.length) - 1] ?? 0;
    }
    return ring.p95;
  }
}
