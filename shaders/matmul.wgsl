// Batched matrix product for software adapters:
// out[b1, b2, m, n] = sum_k lhs[b1, b2, m, k] * rhs[b1, b2, k, n].
//
// Launched by src/kernels/matmul/launch.rs, which also generates the unrolled blocks below. Both
// inputs are read through their strides (info), so transposed and broadcast views need no copy;
// the output is contiguous.
//
// Each invocation computes one TM x TN tile of one batch entry, keeping the tile's accumulators
// in registers: every k step loads TM values of lhs and TN of rhs and does TM * TN
// multiply-adds. Why this shape, and why no workgroup-memory tiles: on lavapipe (the software
// Vulkan the tests and CI run on) every workgroup barrier is a coroutine switch, which makes
// the shared-memory tiling of Burn's matmul kernels slow there, while unrolled scalars stay in
// SIMD registers across the invocations of a workgroup. Rows and columns past the edge read a
// clamped index (always in bounds) and are not stored.
//
// Every binding is read_write: cubecl pools allocations, so inputs and outputs can be ranges of
// one wgpu buffer, and wgpu forbids read-only and writable uses of a buffer in one dispatch.
//
// Template parameters: workgroup_size; tm, tn (the tile); and the generated blocks bases,
// init_acc, load_lhs, load_rhs, update_acc, store_out.

@group(0) @binding(0) var<storage, read_write> lhs: array<f32>;
@group(0) @binding(1) var<storage, read_write> rhs: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
// [b1, b2, m, n, k, lhs strides (b1, b2, m, k), rhs strides (b1, b2, k, n), tiles along m,
//  tiles along n]. Two batch axes, so that [batch, heads, seq, d] views need no copy.
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

const WORKGROUP: u32 = {{ workgroup_size }}u;
const TM: u32 = {{ tm }}u;
const TN: u32 = {{ tn }}u;

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let b2n = info[1];
    let m = info[2];
    let n = info[3];
    let k = info[4];
    let tiles_m = info[13];
    let tiles_n = info[14];
    let tile = (group.y * groups.x + group.x) * WORKGROUP + local;
    if (tile >= info[0] * b2n * tiles_m * tiles_n) {
        return;
    }
    // Neighbouring invocations take neighbouring column tiles: they share the lhs rows.
    let tile_n = tile % tiles_n;
    let rest = tile / tiles_n;
    let m0 = (rest % tiles_m) * TM;
    let n0 = tile_n * TN;
    let b = rest / tiles_m;
    let b1 = b / b2n;
    let b2 = b % b2n;
    let lhs_sk = info[8];
    let rhs_sk = info[11];
    let lhs_b = b1 * info[5] + b2 * info[6];
    let rhs_b = b1 * info[9] + b2 * info[10];

{{ bases }}
{{ init_acc }}
    for (var kk = 0u; kk < k; kk++) {
{{ load_lhs }}
{{ load_rhs }}
{{ update_acc }}
    }
    let out_b = b * m * n;
{{ store_out }}
}
