import { Tensor } from 'onnxruntime-node';

/**
 * The past key/value tensors of a batch, in the Optimum layout: for each layer a key and a value tensor of shape
 * [batch, kv_heads, length, head_dim], float32, in the order layer 0 key, layer 0 value, layer 1 key, …
 */
export interface KvCache {
  batch: number;
  length: number;
  tensors: Tensor[];
}

export interface KvShape {
  layers: number;
  kvHeads: number;
  headDim: number;
}

export function emptyKvCache(shape: KvShape, batch: number): KvCache {
  const tensors: Tensor[] = [];
  for (let i = 0; i < 2 * shape.layers; i++) tensors.push(new Tensor('float32', new Float32Array(0), [batch, shape.kvHeads, 0, shape.headDim]));
  return { batch, length: 0, tensors };
}

/**
 * A new cache holding rows `rows` of `cache` (in that order, repeats allowed) without their first `dropLeading`
 * positions. Generation uses it to drop finished rows (so they cost nothing more) together with the left padding
 * no remaining row needs, and to give each prompt's prefilled cache to its n samples.
 */
export function selectKvRows(cache: KvCache, rows: readonly number[], dropLeading = 0): KvCache {
  if (dropLeading < 0 || dropLeading > cache.length) throw new RangeError(`dropLeading ${dropLeading} outside [0, ${cache.length}]`);
  const length = cache.length - dropLeading;
  const tensors = cache.tensors.map((t) => {
    const [, heads, , dim] = t.dims as number[];
    const src = t.data as Float32Array;
    const out = new Float32Array(rows.length * heads * length * dim);
    const srcRow = heads * cache.length * dim;
    const dstRow = heads * length * dim;
    rows.forEach((row, r) => {
      if (dropLeading === 0) {
        out.set(src.subarray(row * srcRow, (row + 1) * srcRow), r * dstRow);
        return;
      }
      for (let h = 0; h < heads; h++) {
        const from = row * srcRow + (h * cache.length + dropLeading) * dim;
        out.set(src.subarray(from, from + length * dim), r * dstRow + h * length * dim);
      }
    });
    return new Tensor('float32', out, [rows.length, heads, length, dim]);
  });
  return { batch: rows.length, length, tensors };
}
