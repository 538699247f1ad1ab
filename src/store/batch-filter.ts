/**
 * Which integrations a batch of call rows holds, as a Bloom filter stored
 * beside the batch (audit_batch_filters). Written once per batch and only ever
 * appended, it costs the writer one small row however many integrations the
 * batch names; a per-integration index (one row per integration and batch,
 * at random places in a B-tree) cost about 20 µs of the writer's time per
 * call with 100,000 integrations used at random, for the dirty pages of each
 * commit.
 *
 * 16 bits per distinct id and 6 probes: about one batch in a thousand that
 * does not hold an integration says it might; the reader then rules it out
 * with a string test on the batch before parsing it, so an answer is never
 * wrong, only that batch is read for nothing.
 */
const BITS_PER_ID = 16;
const PROBES = 6;
const MIN_BITS = 64;

/** FNV-1a over the UTF-16 code units, from a given basis (two bases give two independent hashes). */
function fnv1a(s: string, basis: number): number {
  let h = basis;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function probes(id: string, bits: number, each: (bit: number) => boolean): boolean {
  const h1 = fnv1a(id, 0x811c9dc5);
  const h2 = fnv1a(id, 0x050c5d1f) | 1;
  for (let i = 0; i < PROBES; i++) if (!each((h1 + Math.imul(i, h2)) & (bits - 1))) return false;
  return true;
}

/** The filter of a batch's integration ids (nulls skipped); its size grows with the number of distinct ids. */
export function batchFilter(ids: Iterable<string | null>): Buffer {
  const distinct = new Set<string>();
  for (const id of ids) if (id !== null) distinct.add(id);
  let bits = MIN_BITS;
  while (bits < distinct.size * BITS_PER_ID) bits *= 2;
  const filter = Buffer.alloc(bits / 8);
  for (const id of distinct) {
    probes(id, bits, (b) => {
      filter[b >> 3] = (filter[b >> 3] as number) | (1 << (b & 7));
      return true;
    });
  }
  return filter;
}

/** False: the batch certainly does not hold `id`. True: it probably does. */
export function filterMayHold(filter: Uint8Array, id: string): boolean {
  const bits = filter.length * 8;
  if (bits < MIN_BITS || (bits & (bits - 1)) !== 0) return true;
  return probes(id, bits, (b) => ((filter[b >> 3] as number) & (1 << (b & 7))) !== 0);
}
