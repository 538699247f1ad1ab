/**
 * A map of at most `max` entries that forgets the least useful one first
 * ("second chance", the CLOCK approximation of LRU). A hit only sets a flag:
 * an LRU Map that deletes and re-inserts its key on every hit churns the
 * hash table (at 100,000 plans it rehashed in the hot path). When full, the
 * oldest entry goes unless it was used since it was last passed over; then
 * it moves to the back with its flag cleared and the next oldest is tried.
 */
interface Slot<V> {
  value: V;
  used: boolean;
}

export class BoundedCache<K, V> {
  private readonly map = new Map<K, Slot<V>>();

  constructor(readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  /** The value, or undefined when the key is not held. */
  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) return undefined;
    slot.used = true;
    return slot.value;
  }

  set(key: K, value: V): void {
    const slot = this.map.get(key);
    if (slot !== undefined) {
      slot.value = value;
      slot.used = true;
      return;
    }
    if (this.map.size >= this.max) this.evictOne();
    this.map.set(key, { value, used: false });
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  *entries(): IterableIterator<[K, V]> {
    for (const [key, slot] of this.map) yield [key, slot.value];
  }

  private evictOne(): void {
    // Terminates: every pass clears a flag, so within size + 1 steps an unflagged entry is oldest.
    for (;;) {
      const oldest = this.map.entries().next().value as [K, Slot<V>] | undefined;
      if (oldest === undefined) return;
      const [key, slot] = oldest;
      this.map.delete(key);
      if (!slot.used) return;
      slot.used = false;
      this.map.set(key, slot);
    }
  }
}
