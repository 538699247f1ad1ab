import { describe, expect, it } from 'vitest';
import { BoundedCache } from '../../src/bounded-cache.js';

describe('BoundedCache (second chance)', () => {
  it('never holds more than its bound and keeps what was used since it was stored', () => {
    const c = new BoundedCache<string, number>(3);
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    expect(c.get('a')).toBe(1);
    c.set('d', 4);
    expect(c.size).toBe(3);
    // b was the oldest entry not used since it was stored.
    expect(c.get('b')).toBeUndefined();
    expect([c.get('a'), c.get('c'), c.get('d')]).toEqual([1, 3, 4]);
  });

  it('evicts even when every entry was used, and a replaced value counts as a use', () => {
    const c = new BoundedCache<string, number | null>(2);
    c.set('a', null);
    c.set('b', 2);
    c.get('a');
    c.get('b');
    c.set('b', 5);
    c.set('c', 3);
    expect(c.size).toBe(2);
    expect(c.get('c')).toBe(3);
    // a null value is held (an integration that does not exist), not mistaken for a miss
    const held = [...c.entries()].map(([k]) => k);
    expect(held).toHaveLength(2);
    expect(held).toContain('c');
  });

  it('delete and clear forget entries', () => {
    const c = new BoundedCache<string, number>(10);
    c.set('a', 1);
    c.set('b', 2);
    c.delete('a');
    expect(c.get('a')).toBeUndefined();
    c.clear();
    expect(c.size).toBe(0);
  });
});
