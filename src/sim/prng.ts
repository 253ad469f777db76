/**
 * A seeded pseudo-random generator (mulberry32), so a simulation replays identically for a seed.
 * Streams for different purposes are derived from the seed and a label, so adding a draw in one
 * place (e.g. the overlay offsets) does not shift the numbers another place (synthetic arrivals) sees.
 */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
}

export function createRandom(seed: number, stream = ''): Random {
  let state = (hashLabel(stream) ^ Math.imul(seed | 0, 0x9e3779b1)) >>> 0;
  return {
    next() {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/** Exponential with the given rate (events per unit), by inversion: -ln(1 - U) / rate. */
export function exponential(random: Random, rate: number): number {
  return -Math.log(1 - random.next()) / rate;
}

/** FNV-1a of a label, to separate streams. */
function hashLabel(label: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    hash ^= label.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
