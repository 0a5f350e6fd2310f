// Nearest codebook entry of every row of x: argmin_c sum_j (x[r, j] - codebook[c, j])^2 and that
// distance, in one pass, without the [n, codebook_size] distance matrix.
//
// Launched by src/kernels/quantize/launch.rs, which also generates the unrolled blocks below.
// Each invocation holds ROWS rows of x in registers and scans the codebook once for all of them,
// so every codebook load serves ROWS rows. A running minimum with a strict `<`, scanning codes
// in increasing order, gives the smallest index among equal distances. Distances are summed
// directly as squared differences in a fixed order: equal codebook rows give equal distances.
//
// Why unrolled, and why no workgroup-memory tiles: on lavapipe (the software Vulkan the tests
// and benchmarks run on) an array indexed by a loop counter, and any load inside a loop, is
// executed lane by lane; unrolled scalars stay in SIMD registers. A codebook tile in workgroup
// memory measured slower there (barriers, and its loads are lane by lane too); the codebook
// (32 KiB for 256 x 32) is read through the cache by every invocation instead.
//
// Every binding is read_write: cubecl pools allocations, so inputs and outputs can be ranges of
// one wgpu buffer, and wgpu forbids read-only and writable uses of a buffer in one dispatch.
//
// Template parameters: workgroup_size; rows (ROWS); elem (f32, or vec4<f32> when d % 4 == 0)
// and sum_squares (the squared norm of an elem); d (row length in elems, D); and the generated
// blocks load_rows, init_best, load_code, update_rows, store_rows.

@group(0) @binding(0) var<storage, read_write> x: array<{{ elem }}>;
@group(0) @binding(1) var<storage, read_write> codebook: array<{{ elem }}>;
@group(0) @binding(2) var<storage, read_write> out_index: array<i32>;
@group(0) @binding(3) var<storage, read_write> out_dist: array<f32>;
// [n, codebook_size].
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

const WORKGROUP: u32 = {{ workgroup_size }}u;
const ROWS: u32 = {{ rows }}u;
const D: u32 = {{ d }}u;

fn sq(v: {{ elem }}) -> f32 {
    return {{ sum_squares }};
}

// Keeps `dist` if it is strictly below the best so far (branch-free).
fn update(dist: f32, code: u32, best: ptr<function, f32>, index: ptr<function, u32>) {
    let better = dist < *best;
    *best = select(*best, dist, better);
    *index = select(*index, code, better);
}

// Row r of this invocation: first + r * WORKGROUP + local, clamped to the last row for loads
// (rows past n compute on a copy of it and are not written).
fn row_of(first: u32, r: u32, local: u32, n: u32) -> u32 {
    return min(first + r * WORKGROUP + local, n - 1u);
}

fn store(first: u32, r: u32, local: u32, n: u32, best: f32, index: u32) {
    let row = first + r * WORKGROUP + local;
    if row < n {
        out_index[row] = i32(index);
        out_dist[row] = best;
    }
}

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(
    @builtin(workgroup_id) workgroup_id: vec3<u32>,
    @builtin(num_workgroups) num_workgroups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let n = info[0];
    let k = info[1];
    // Two-dimensional grid: more than 65,535 workgroups do not fit in x alone.
    let first = (workgroup_id.y * num_workgroups.x + workgroup_id.x) * WORKGROUP * ROWS;

    // x<r>_<j>: element j of row r.
{{ load_rows }}
    // best<r>, index<r>: the running minimum of row r.
{{ init_best }}
    for (var c = 0u; c < k; c++) {
        // q<j>: element j of code c.
{{ load_code }}
        // update(sq(x<r>_0 - q0) + sq(x<r>_1 - q1) + ..., c, &best<r>, &index<r>) for every row.
{{ update_rows }}
    }
{{ store_rows }}
}
