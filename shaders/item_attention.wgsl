// Item-local attention, forward (DiscRec's collaborative branch, SPEC section 4): for every
// (row, query, head), softmax over the keys of the query's own item (and the EOS <-> last item
// link) of q . k / sqrt(d_kv), times v, plus the log-sum-exp the backward needs.
//
// Launched by src/kernels/item_attention/launch.rs, which also generates the unrolled blocks.
// One invocation per (row, query, head); it scans only the keys at offsets -WINDOW..=WINDOW
// (items are contiguous and at most WINDOW tokens long), with an online softmax, so no
// [seq, seq] score matrix exists anywhere. q and the accumulator live in unrolled vec4
// registers (on lavapipe an array indexed by a loop counter is executed lane by lane).
//
// Every binding is read_write: cubecl pools allocations, so inputs and outputs can be ranges of
// one wgpu buffer, and wgpu forbids read-only and writable uses of a buffer in one dispatch.
//
// Template parameters: workgroup_size; heads (H); dv (vec4s per head, DV); window (WINDOW);
// scale (1 / sqrt(d_kv)); and the generated blocks load_q, init_acc, load_kv, dot_qk,
// update_acc, store_out.

// [batch, seq, heads, d_kv] each, as vec4.
@group(0) @binding(0) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<f32>>;
// [batch, seq]: 0 padding, 1 EOS, 2 the last item, 3 the one before, ...
@group(0) @binding(3) var<storage, read_write> slot: array<i32>;
// [batch, seq, heads, d_kv] as vec4.
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
// [batch, seq, heads]: log-sum-exp of the scores, 0 where the query sees no key.
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
// [batch * seq * heads, seq].
@group(0) @binding(6) var<storage, read_write> info: array<u32>;

const H: u32 = {{ heads }}u;
const DV: u32 = {{ dv }}u;
const WINDOW: i32 = {{ window }};
const SCALE: f32 = {{ scale }};

// Whether a query of slot a sees a key of slot b: same item, or EOS <-> last item.
fn allowed(a: i32, b: i32) -> bool {
    return a != 0 && (a == b || (a + b == 3 && a * b == 2));
}

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(
    @builtin(workgroup_id) workgroup_id: vec3<u32>,
    @builtin(num_workgroups) num_workgroups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let n = info[0];
    let seq = info[1];
    // Two-dimensional grid: more than 65,535 workgroups do not fit in x alone.
    let g = (workgroup_id.y * num_workgroups.x + workgroup_id.x) * {{ workgroup_size }}u + local;
    if g >= n {
        return;
    }
    let h = g % H;
    let row = g / H; // batch * seq + i
    let i = row % seq;
    let first = row - i; // the row's first token
    let si = slot[row];
    let qb = g * DV;
    // q<x>: vec4 x of the query.
{{ load_q }}
    var m = -1e30;
    var l = 0.0;
    // acc<x>: the running sum of p * v.
{{ init_acc }}
    for (var o = -WINDOW; o <= WINDOW; o++) {
        let j = i32(i) + o;
        if j < 0 || j >= i32(seq) {
            continue;
        }
        let rj = first + u32(j);
        if !allowed(si, slot[rj]) {
            continue;
        }
        let kb = (rj * H + h) * DV;
        // k<x>, v<x>: vec4 x of key j's k and v.
{{ load_kv }}
        let s = ({{ dot_qk }}) * SCALE;
        let m_new = max(m, s);
        let alpha = exp(m - m_new);
        let p = exp(s - m_new);
        l = l * alpha + p;
{{ update_acc }}
        m = m_new;
    }
    let seen = l > 0.0;
    let inv = select(0.0, 1.0 / l, seen);
{{ store_out }}
    lse[g] = select(0.0, m + log(l), seen);
}
