import { describe, expect, it } from 'vitest';
import { decision } from '../../test/api-fixtures.ts';
import { InMemoryDecisionStore } from './decision-store.ts';

describe('InMemoryDecisionStore', () => {
  it('registers scalers without a decision, then publishes one', () => {
    const store = new InMemoryDecisionStore();
    store.register('ns', 'a', { demandWindowSeconds: 300 });
    expect(store.get('ns', 'a')).toEqual({
      namespace: 'ns',
      name: 'a',
      decision: undefined,
      demandWindowSeconds: 300,
    });
    store.publish('ns', 'a', decision({ desiredReplicas: 7 }));
    expect(store.get('ns', 'a')?.decision?.desiredReplicas).toBe(7);
    // The window registered earlier is kept when a publish does not restate it.
    expect(store.get('ns', 'a')?.demandWindowSeconds).toBe(300);
  });

  it('re-registering keeps the last decision (a spec change must not make metrics vanish)', () => {
    const store = new InMemoryDecisionStore();
    store.publish('ns', 'a', decision({ desiredReplicas: 4 }));
    store.register('ns', 'a', { demandWindowSeconds: 60 });
    expect(store.get('ns', 'a')?.decision?.desiredReplicas).toBe(4);
    expect(store.get('ns', 'a')?.demandWindowSeconds).toBe(60);
  });

  it('lists sorted by namespace then name, and per namespace', () => {
    const store = new InMemoryDecisionStore();
    store.publish('b', 'z', decision());
    store.publish('a', 'y', decision());
    store.publish('b', 'c', decision());
    expect(store.list().map((s) => `${s.namespace}/${s.name}`)).toEqual(['a/y', 'b/c', 'b/z']);
    expect(store.list('b').map((s) => s.name)).toEqual(['c', 'z']);
    expect(store.list('missing')).toEqual([]);
  });

  it('serves fresh lists after a change (no stale cache)', () => {
    const store = new InMemoryDecisionStore();
    store.publish('ns', 'a', decision({ desiredReplicas: 1 }));
    expect(store.list('ns')[0]?.decision?.desiredReplicas).toBe(1);
    expect(store.list()).toHaveLength(1);
    store.publish('ns', 'a', decision({ desiredReplicas: 2 }));
    store.publish('ns', 'b', decision());
    expect(store.list('ns').map((s) => s.decision?.desiredReplicas)).toEqual([2, 3]);
    expect(store.remove('ns', 'a')).toBe(true);
    expect(store.remove('ns', 'a')).toBe(false);
    expect(store.list('ns').map((s) => s.name)).toEqual(['b']);
    expect(store.list()).toHaveLength(1);
    expect(store.get('ns', 'a')).toBeUndefined();
  });

  it('is synced only after markSynced', () => {
    const store = new InMemoryDecisionStore();
    expect(store.synced()).toBe(false);
    store.markSynced();
    expect(store.synced()).toBe(true);
  });

  it('hands out frozen entries, so a reader cannot alter what others are served', () => {
    const store = new InMemoryDecisionStore();
    store.publish('ns', 'a', decision());
    expect(Object.isFrozen(store.get('ns', 'a'))).toBe(true);
  });

  it('changes its version on every register, publish and effective remove, and only then', () => {
    const store = new InMemoryDecisionStore();
    const versions = [store.version()];
    const step = (change: () => unknown) => {
      change();
      versions.push(store.version());
    };
    step(() => store.register('ns', 'a'));
    step(() => store.publish('ns', 'a', decision()));
    step(() => store.publish('ns', 'a', decision({ desiredReplicas: 9 })));
    step(() => store.register('other', 'b', { demandWindowSeconds: 60 }));
    step(() => store.remove('ns', 'a'));
    expect(new Set(versions).size).toBe(versions.length);
    const settled = store.version();
    store.remove('ns', 'a');
    store.remove('missing', 'x');
    store.get('other', 'b');
    store.list();
    store.list('other');
    store.markSynced();
    expect(store.version()).toBe(settled);
  });
});
