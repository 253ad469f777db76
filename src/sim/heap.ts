/**
 * A binary min-heap ordered by a numeric key, ties broken by insertion order so that events at the
 * same instant run in the order they were scheduled (determinism does not depend on heap internals).
 */
export class MinHeap<T> {
  private keys: number[] = [];
  private orders: number[] = [];
  private values: T[] = [];
  private counter = 0;

  get size(): number {
    return this.values.length;
  }

  push(key: number, value: T): void {
    this.keys.push(key);
    this.orders.push(this.counter++);
    this.values.push(value);
    this.up(this.values.length - 1);
  }

  peekKey(): number {
    return this.values.length === 0 ? Number.POSITIVE_INFINITY : (this.keys[0] as number);
  }

  peek(): T | undefined {
    return this.values[0];
  }

  pop(): T | undefined {
    const n = this.values.length;
    if (n === 0) return undefined;
    const top = this.values[0];
    const lastKey = this.keys.pop() as number;
    const lastOrder = this.orders.pop() as number;
    const lastValue = this.values.pop() as T;
    if (n > 1) {
      this.keys[0] = lastKey;
      this.orders[0] = lastOrder;
      this.values[0] = lastValue;
      this.down(0);
    }
    return top;
  }

  private less(a: number, b: number): boolean {
    const ka = this.keys[a] as number;
    const kb = this.keys[b] as number;
    return ka < kb || (ka === kb && (this.orders[a] as number) < (this.orders[b] as number));
  }

  private swap(a: number, b: number): void {
    const k = this.keys[a] as number;
    this.keys[a] = this.keys[b] as number;
    this.keys[b] = k;
    const o = this.orders[a] as number;
    this.orders[a] = this.orders[b] as number;
    this.orders[b] = o;
    const v = this.values[a] as T;
    this.values[a] = this.values[b] as T;
    this.values[b] = v;
  }

  private up(index: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(index: number): void {
    const n = this.values.length;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.less(right, left) ? right : left;
      if (!this.less(child, i)) break;
      this.swap(i, child);
      i = child;
    }
  }
}
