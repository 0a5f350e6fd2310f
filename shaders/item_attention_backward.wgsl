// Item-local attention, backward: dq, dk and dv of shaders/item_attention.wgsl.
//
// Launched by src/kernels/item_attention/launch.rs, which also generates the unrolled blocks.
// One invocation per (row, token t, head). The mask is symmetric, so the tokens u that t
// attends to (as a query) are the tokens that attend to t (as a key): one scan over offsets
// -WINDOW..=WINDOW gives, without atomics,
//   dq_t = SCALE * sum_u p(t, u) (dout_t . v_u - delta_t) k_u
//   dk_t = SCALE * sum_u p(u, t) (dout_u . v_t - delta_u) q_u
//   dv_t =         sum_u p(u, t) dout_u
// with p(a, b) = exp(SCALE q_a . k_b - lse_a) recomputed from the forward's log-sum-exp and
// delta_a = dout_a . out_a (computed before the launch).
//
// Every binding is read_write (see item_attention.wgsl). Template parameters: workgroup_size;
// heads (H); dv (DV); window (WINDOW); scale (SCALE); and the generated blocks load_t, init_acc,
// load_u, dot_qt_ku, dot_dot_vu, dot_qu_kt, dot_dou_vt, update_acc, store_grads.

// [batch, seq, heads, d_kv] each, as vec4.
@group(0) @binding(0) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<f32>>;
// [batch, seq].
@group(0) @binding(3) var<storage, read_write> slot: array<i32>;
// [batch, seq, heads, 2]: (lse, delta) per query.
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
// [batch, seq, heads, d_kv] as vec4.
@group(0) @binding(5) var<storage, read_write> dout: array<vec4<f32>>;
// [3, batch, seq, heads, d_kv] as vec4: dq, dk, dv.
@group(0) @binding(6) var<storage, read_write> grads: array<vec4<f32>>;
// [batch * seq * heads, seq].
@group(0) @binding(7) var<storage, read_write> info: array<u32>;

const H: u32 = {{ heads }}u;
const DV: u32 = {{ dv }}u;
const WINDOW: i32 = {{ window }};
const SCALE: f32 = {{ scale }};

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
    let g = (workgroup_id.y * num_workgroups.x + workgroup_id.x) * {{ workgroup_size }}u + local;
    if g >= n {
        return;
    }
    let h = g % H;
    let row = g / H;
    let i = row % seq;
    let first = row - i;
    let st = slot[row];
    let tb = g * DV;
    let lse_t = stats[2u * g];
    let delta_t = stats[2u * g + 1u];
    // qt<x>, kt<x>, vt<x>, dot<x>: token t's q, k, v and dout.
{{ load_t }}
    // dq<x>, dk<x>, dv<x>: the gradients being summed.
{{ init_acc }}
    for (var o = -WINDOW; o <= WINDOW; o++) {
        let j = i32(i) + o;
        if j < 0 || j >= i32(seq) {
            continue;
        }
        let ru = first + u32(j);
        if !allowed(st, slot[ru]) {
            continue;
        }
        let gu = ru * H + h;
        let ub = gu * DV;
        let lse_u = stats[2u * gu];
        let delta_u = stats[2u * gu + 1u];
        // qu<x>, ku<x>, vu<x>, dou<x>: token u's q, k, v and dout.
{{ load_u }}
        // t as the query, u as the key.
        let p1 = exp(({{ dot_qt_ku }}) * SCALE - lse_t);
        let ds1 = p1 * (({{ dot_dot_vu }}) - delta_t);
        // u as the query, t as the key.
        let p2 = exp(({{ dot_qu_kt }}) * SCALE - lse_u);
        let ds2 = p2 * (({{ dot_dou_vt }}) - delta_u);
{{ update_acc }}
    }
{{ store_grads }}
}
