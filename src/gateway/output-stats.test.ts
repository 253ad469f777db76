import { describe, expect, it } from 'vitest';
import { OutputStats } from './output-stats.ts';

describe('OutputStats', () => {
  it('gives the nearest-rank P95 of the recent window per label', () => {
    const stats = new OutputStats(100);
    expect(stats.p95('m')).toBeUndefined();
    for (let i = 1; i <= 100; i++) stats.observe('m', i);
    expect(stats.p95('m')).toBe(95);
    expect(stats.count('m')).toBe(100);
    // The window slides: 100 more observations of 1000 replace the old ones.
    for (let i = 0; i < 100; i++) stats.observe('m', 1000);
    expect(stats.p95('m')).toBe(1000);
    expect(stats.count('m')).toBe(100);
    expect(stats.p95('other')).toBeUndefined();
  });
});
