/**
 * Fast standard-normal draws for Sign-OPT's random directions u ~ N(0, I).
 *
 * MBD draws about 10^8 normals per sample (K_grad = 200 directions × 784 pixels × ~75 iterations × 9
 * target classes), so Box–Muller (one log, sqrt and cos per draw) would cost seconds per sample. This
 * is Marsaglia and Tsang's ziggurat (128 layers): one 32-bit draw, one table lookup and one multiply
 * for ~98.8% of the draws, exact tail and wedge rejection for the rest. The 32-bit words come from
 * the kit's {@link Rng} (xoshiro128**), so runs stay reproducible from their seed. Unlike the 2000
 * paper's SHR3 version, the layer index (low 7 bits) and the value (high 25 bits) use disjoint bits
 * of the word, so they are independent (Doornik 2005); 25 bits exceed float32's 24-bit mantissa.
 */
import type { Rng } from "../util/rng.ts";

const LAYERS = 128;
/** Right edge of the base layer. */
const R = 3.442619855899;
/** Area of each layer. */
const V = 9.91256303526217e-3;
const M31 = 2147483648;
/** Bits of a 32-bit word that carry the value (the low 7 pick the layer). */
const HIGH = ~(LAYERS - 1);

const KN = new Uint32Array(LAYERS);
const WN = new Float64Array(LAYERS);
const FN = new Float64Array(LAYERS);

(function buildTables() {
  let dn = R;
  let tn = dn;
  const q = V / Math.exp(-0.5 * dn * dn);
  KN[0] = Math.floor((dn / q) * M31);
  KN[1] = 0;
  WN[0] = q / M31;
  WN[LAYERS - 1] = dn / M31;
  FN[0] = 1;
  FN[LAYERS - 1] = Math.exp(-0.5 * dn * dn);
  for (let i = LAYERS - 2; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(V / dn + Math.exp(-0.5 * dn * dn)));
    KN[i + 1] = Math.floor((dn / tn) * M31);
    tn = dn;
    FN[i] = Math.exp(-0.5 * dn * dn);
    WN[i] = dn / M31;
  }
})();

/** One N(0,1) draw; `hz` is a signed 31-bit value, `iz` its layer. Slow path included. */
function slow(rng: Rng, hz: number, iz: number): number {
  for (;;) {
    const x = hz * WN[iz];
    if (iz === 0) {
      // Tail beyond R (Marsaglia 1964).
      let xt: number, y: number;
      do {
        xt = -Math.log(1 - rng.uniform()) / R;
        y = -Math.log(1 - rng.uniform());
      } while (y + y < xt * xt);
      return hz > 0 ? R + xt : -R - xt;
    }
    if (FN[iz] + rng.uniform() * (FN[iz - 1] - FN[iz]) < Math.exp(-0.5 * x * x)) return x;
    const w = rng.nextU32();
    hz = (w & HIGH) | 0;
    iz = w & (LAYERS - 1);
    if (Math.abs(hz) < KN[iz]) return hz * WN[iz];
  }
}

/** Fill `out` with independent N(0,1) draws (ziggurat) from `rng`; returns `out`. */
export function fillStandardNormal(rng: Rng, out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i++) {
    const w = rng.nextU32();
    const hz = (w & HIGH) | 0;
    const iz = w & (LAYERS - 1);
    out[i] = Math.abs(hz) < KN[iz] ? hz * WN[iz] : slow(rng, hz, iz);
  }
  return out;
}
