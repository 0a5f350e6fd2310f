//! Launch of `shaders/item_attention.wgsl` (forward) and `shaders/item_attention_backward.wgsl`
//! on the cubecl backend's wgpu runtime: template parameters, the unrolled blocks, output
//! buffers, the info buffer and the dispatch grid.
//!
//! Layout after Burn's `examples/custom-wgpu-kernel` (`forward.rs`).

use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::wgpu::{
    into_contiguous, kernel_source, CubeBackend, CubeTensor, KernelSource, SourceKernel, SourceTemplate,
};
use burn::tensor::{DType, Shape};
use cubecl::prelude::KernelId;
use cubecl::server::KernelArguments;
use cubecl::{CubeCount, CubeDim};
use derive_new::new;

use super::ItemAttentionBackend;

kernel_source!(ForwardRaw, "../../../shaders/item_attention.wgsl");
kernel_source!(BackwardRaw, "../../../shaders/item_attention_backward.wgsl");

/// Invocations per workgroup.
pub(crate) const WORKGROUP_SIZE: u32 = 64;
/// The widest head the kernels take, in floats (the unrolled code grows with it).
const MAX_D_KV: usize = 256;
/// The largest grid side the WebGPU limits guarantee.
const MAX_WORKGROUPS_PER_DIM: u32 = 65_535;

/// Whether the kernels handle heads of `d_kv` floats.
pub(crate) fn kernel_supports(d_kv: usize) -> bool {
    d_kv % 4 == 0 && (4..=MAX_D_KV).contains(&d_kv)
}

/// Which of the two shaders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pass {
    Forward,
    Backward,
}

/// A kernel specialised by its template parameters.
#[derive(Debug)]
struct ItemAttention {
    pass: Pass,
    cube_dim: CubeDim,
    heads: usize,
    /// vec4s per head.
    dv: usize,
    window: usize,
    /// `1 / sqrt(d_kv)` as a WGSL literal.
    scale: String,
}

impl ItemAttention {
    fn new(pass: Pass, heads: usize, d_kv: usize, window: usize) -> Self {
        let scale = format!("{:.9}", 1.0 / (d_kv as f64).sqrt());
        Self { pass, cube_dim: CubeDim::new_1d(WORKGROUP_SIZE), heads, dv: d_kv / 4, window, scale }
    }

    /// One line per vec4 `x`, from `f(x)`.
    fn lines(&self, f: impl Fn(usize) -> String) -> String {
        (0..self.dv).map(|x| f(x) + "\n").collect()
    }

    /// `dot(a0, b0) + dot(a1, b1) + ...`.
    fn dot(&self, a: &str, b: &str) -> String {
        (0..self.dv).map(|x| format!("dot({a}{x}, {b}{x})")).collect::<Vec<_>>().join(" + ")
    }

    fn forward_blocks(&self) -> Vec<(&'static str, String)> {
        vec![
            ("load_q", self.lines(|x| format!("    let q{x} = q[qb + {x}u];"))),
            ("init_acc", self.lines(|x| format!("    var acc{x} = vec4<f32>(0.0);"))),
            ("load_kv", self.lines(|x| format!("        let k{x} = k[kb + {x}u];\n        let v{x} = v[kb + {x}u];"))),
            ("dot_qk", self.dot("q", "k")),
            ("update_acc", self.lines(|x| format!("        acc{x} = acc{x} * alpha + p * v{x};"))),
            ("store_out", self.lines(|x| format!("    out[qb + {x}u] = acc{x} * inv;"))),
        ]
    }

    fn backward_blocks(&self) -> Vec<(&'static str, String)> {
        let load = |who: &str, base: &str| {
            self.lines(|x| {
                ["q", "k", "v"]
                    .iter()
                    .map(|t| format!("let {t}{who}{x} = {t}[{base} + {x}u];"))
                    .chain([format!("let do{who}{x} = dout[{base} + {x}u];")])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        };
        vec![
            ("load_t", load("t", "tb")),
            ("load_u", load("u", "ub")),
            (
                "init_acc",
                self.lines(|x| format!("    var dq{x} = vec4<f32>(0.0); var dk{x} = vec4<f32>(0.0); var dv{x} = vec4<f32>(0.0);")),
            ),
            ("dot_qt_ku", self.dot("qt", "ku")),
            ("dot_dot_vu", self.dot("dot", "vu")),
            ("dot_qu_kt", self.dot("qu", "kt")),
            ("dot_dou_vt", self.dot("dou", "vt")),
            (
                "update_acc",
                self.lines(|x| format!("        dq{x} += ds1 * ku{x}; dk{x} += ds2 * qu{x}; dv{x} += p2 * dou{x};")),
            ),
            (
                "store_grads",
                self.lines(|x| {
                    format!(
                        "    grads[tb + {x}u] = dq{x} * SCALE; grads[(n + g) * DV + {x}u] = dk{x} * SCALE; \
                         grads[(2u * n + g) * DV + {x}u] = dv{x};"
                    )
                }),
            ),
        ]
    }
}

impl KernelSource for ItemAttention {
    fn source(&self) -> SourceTemplate {
        let (raw, blocks) = match self.pass {
            Pass::Forward => (ForwardRaw::new().source(), self.forward_blocks()),
            Pass::Backward => (BackwardRaw::new().source(), self.backward_blocks()),
        };
        let template = raw
            .register("workgroup_size", self.cube_dim.0.x.to_string())
            .register("heads", self.heads.to_string())
            .register("dv", self.dv.to_string())
            .register("window", self.window.to_string())
            .register("scale", self.scale.clone());
        blocks.into_iter().fold(template, |t, (name, code)| t.register(name, code))
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.pass, self.cube_dim, self.heads, self.dv, self.window))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// The grid of workgroups covering `n` invocations: `x * y >= ceil(n / WORKGROUP_SIZE)`.
fn grid(n: usize) -> (u32, u32) {
    let groups = n.div_ceil(WORKGROUP_SIZE as usize) as u32;
    if groups <= MAX_WORKGROUPS_PER_DIM {
        (groups, 1)
    } else {
        (MAX_WORKGROUPS_PER_DIM, groups.div_ceil(MAX_WORKGROUPS_PER_DIM))
    }
}

fn f32_contiguous(t: CubeTensor, name: &str) -> CubeTensor {
    assert_eq!(t.dtype, DType::F32, "the item attention kernel takes f32 inputs, {name} is {:?}", t.dtype);
    into_contiguous(t)
}

fn new_output(like: &CubeTensor, shape: Shape) -> CubeTensor {
    let handle = like.client.empty(shape.num_elements().max(1) * DType::F32.size());
    CubeTensor::new_contiguous(like.client.clone(), like.device.clone(), shape, handle, DType::F32)
}

/// Launches `kernel` over `[batch, seq, heads]` invocations with `buffers` then the info buffer.
fn launch(kernel: ItemAttention, like: &CubeTensor, buffers: Vec<&CubeTensor>) {
    let shape = like.meta.shape();
    let (seq, n) = (shape[1], shape[0] * shape[1] * shape[2]);
    let client = like.client.clone();
    let info = client.create_from_slice(bytemuck::cast_slice(&[n as u32, seq as u32]));
    let mut bindings: Vec<_> = buffers.into_iter().map(|t| t.handle.clone().binding()).collect();
    bindings.push(info.binding());
    let (gx, gy) = grid(n);
    let cube_dim = kernel.cube_dim;
    client.launch(
        Box::new(SourceKernel::new(kernel, cube_dim)),
        CubeCount::Static(gx, gy, 1),
        KernelArguments::new().with_buffers(bindings),
    );
}

/// `[batch, seq, heads, d_kv]` and the checks shared by both passes.
fn dims(q: &CubeTensor, k: &CubeTensor, v: &CubeTensor, slot: &CubeTensor) -> [usize; 4] {
    let s = q.meta.shape();
    let d = [s[0], s[1], s[2], s[3]];
    assert!(k.meta.shape() == s && v.meta.shape() == s, "q, k and v must have one shape");
    assert_eq!(slot.dtype, DType::I32, "the slot tensor must be i32");
    assert!(kernel_supports(d[3]), "the item attention kernel takes d_kv a multiple of 4 up to {MAX_D_KV}, got {}", d[3]);
    d
}

impl ItemAttentionBackend for CubeBackend {
    fn item_attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        slot: IntTensor<Self>,
        window: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (q, k, v) = (f32_contiguous(q, "q"), f32_contiguous(k, "k"), f32_contiguous(v, "v"));
        let slot = into_contiguous(slot);
        let [batch, seq, heads, d_kv] = dims(&q, &k, &v, &slot);
        let out = new_output(&q, Shape::new([batch, seq, heads, d_kv]));
        let lse = new_output(&q, Shape::new([batch, seq, heads]));
        if batch * seq * heads > 0 {
            let kernel = ItemAttention::new(Pass::Forward, heads, d_kv, window);
            launch(kernel, &q, vec![&q, &k, &v, &slot, &out, &lse]);
        }
        (out, lse)
    }

    fn item_attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        slot: IntTensor<Self>,
        stats: FloatTensor<Self>,
        dout: FloatTensor<Self>,
        window: usize,
    ) -> FloatTensor<Self> {
        let (q, k, v) = (f32_contiguous(q, "q"), f32_contiguous(k, "k"), f32_contiguous(v, "v"));
        let (stats, dout) = (f32_contiguous(stats, "stats"), f32_contiguous(dout, "dout"));
        let slot = into_contiguous(slot);
        let [batch, seq, heads, d_kv] = dims(&q, &k, &v, &slot);
        assert_eq!(dout.meta.shape(), q.meta.shape(), "dout must have q's shape");
        let grads = new_output(&q, Shape::new([3, batch, seq, heads, d_kv]));
        if batch * seq * heads > 0 {
            let kernel = ItemAttention::new(Pass::Backward, heads, d_kv, window);
            launch(kernel, &q, vec![&q, &k, &v, &slot, &stats, &dout, &grads]);
        }
        grads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_fill_every_placeholder() {
        for pass in [Pass::Forward, Pass::Backward] {
            for d_kv in [4, 64] {
                let src = ItemAttention::new(pass, 2, d_kv, 4).source().complete();
                assert!(!src.contains("{{"), "{src}");
                assert!(src.contains("@workgroup_size(64, 1, 1)"));
                assert!(src.contains("const WINDOW: i32 = 4;"));
                let last = d_kv / 4 - 1;
                let probe = match pass {
                    Pass::Forward => format!("out[qb + {last}u] = acc{last} * inv;"),
                    Pass::Backward => format!("grads[(2u * n + g) * DV + {last}u] = dv{last};"),
                };
                assert!(src.contains(&probe), "{src}");
            }
        }
    }

    #[test]
    fn the_grid_covers_every_invocation_within_the_limits() {
        for n in [1, 63, 64, 65, 41_472, 64 * 65_535 + 1] {
            let (gx, gy) = grid(n);
            assert!(gx <= MAX_WORKGROUPS_PER_DIM && gy <= MAX_WORKGROUPS_PER_DIM);
            assert!(gx as usize * gy as usize * WORKGROUP_SIZE as usize >= n, "n = {n}");
        }
    }

    #[test]
    fn only_heads_of_whole_vec4s_are_supported() {
        assert!(kernel_supports(64) && kernel_supports(4) && kernel_supports(256));
        assert!(!kernel_supports(6) && !kernel_supports(0) && !kernel_supports(260));
    }
}
