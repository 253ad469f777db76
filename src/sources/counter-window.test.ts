import { describe, expect, it } from 'vitest';
import { CounterWindow } from './counter-window.ts';

describe('CounterWindow', () => {
  it('has no rate until two samples exist', () => {
    const w = new CounterWindow(120);
    expect(w.rate()).toBeUndefined();
    w.push(0, 100);
    expect(w.rate()).toBeUndefined();
    w.push(15, 160);
    expect(w.rate()).toBe(4);
  });

  it.each([
    {
      title: 'steady growth',
      points: [
        [0, 100],
        [15, 160],
        [30, 220],
      ],
      // (220 - 100) / 30
      rate: 4,
    },
    {
      title: 'a reset counts the new value as the increase',
      points: [
        [0, 100],
        [15, 160],
        [30, 20],
      ],
      // (160 - 100) + 20 = 80 over 30 s
      rate: 80 / 30,
    },
    {
      title: 'a reset to zero',
      points: [
        [0, 50],
        [10, 0],
        [20, 10],
      ],
      // 0 + 0 + 10 = 10 over 20 s
      rate: 0.5,
    },
    {
      title: 'a flat counter is a real zero rate',
      points: [
        [0, 7],
        [10, 7],
      ],
      rate: 0,
    },
  ])('$title', ({ points, rate }) => {
    const w = new CounterWindow(120);
    for (const [t, v] of points) w.push(t as number, v as number);
    expect(w.rate()).toBeCloseTo(rate, 12);
  });

  it('forgets samples older than the window', () => {
    const w = new CounterWindow(30);
    w.push(0, 0); // dropped once t=40 arrives (older than 40 - 30)
    w.push(20, 1000);
    w.push(40, 1100);
    expect(w.size).toBe(2);
    expect(w.rate()).toBe(5);
  });

  it('ignores repeated or out-of-order ticks, NaN and negative values', () => {
    const w = new CounterWindow(120);
    w.push(10, 5);
    w.push(10, 999);
    w.push(5, 1);
    w.push(20, Number.NaN);
    w.push(20, -1);
    w.push(20, 25);
    expect(w.size).toBe(2);
    expect(w.rate()).toBe(2);
  });
});
