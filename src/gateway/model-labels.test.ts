import { describe, expect, it } from 'vitest';
import { ModelLabeler } from './model-labels.ts';

describe('ModelLabeler', () => {
  it('keeps the first N names seen and folds the rest into "other"', () => {
    const labeler = new ModelLabeler({ maxLabels: 2 });
    expect(['a', 'b', 'c', 'a', 'b', 'c', undefined, ''].map((m) => labeler.label(m))).toEqual([
      'a',
      'b',
      'other',
      'a',
      'b',
      'other',
      'unknown',
      'unknown',
    ]);
  });

  it('uses only the allow-list when given', () => {
    const labeler = new ModelLabeler({ allowList: ['llama'], maxLabels: 100 });
    expect(labeler.label('llama')).toBe('llama');
    expect(labeler.label('qwen')).toBe('other');
  });

  it('never admits absurdly long names', () => {
    expect(new ModelLabeler({ maxLabels: 5 }).label('x'.repeat(500))).toBe('other');
  });
});
