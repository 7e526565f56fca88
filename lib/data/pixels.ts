/** Conversion of 8-bit pixel values to the kit's float32 [0,1] convention. */

let unitTable: Float32Array | undefined;

/** Lookup table byte → byte/255 as float32 (bit-identical to dividing). */
export function byteToUnit(): Float32Array {
  if (!unitTable) {
    unitTable = new Float32Array(256);
    for (let i = 0; i < 256; i++) unitTable[i] = i / 255;
  }
  return unitTable;
}

/** Convert bytes to float32 in [0,1] (value / 255). */
export function bytesToUnit(bytes: Uint8Array): Float32Array {
  const table = byteToUnit();
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = table[bytes[i]];
  return out;
}
