//! Launch of `shaders/matmul.wgsl` on the cubecl backend's wgpu runtime: the unrolled tile,
//! the output buffer, the info buffer (shapes and strides) and the dispatch grid.
//!
//! Layout after Burn's `examples/custom-wgpu-kernel` (`forward.rs`).

use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{kernel_source, CubeBackend, CubeTensor, KernelSource, SourceKernel, SourceTemplate};
use burn::tensor::{DType, Shape};
use cubecl::prelude::KernelId;
use cubecl::server::KernelArguments;
use cubecl::{CubeCount, CubeDim};
use derive_new::new;

use super::MatmulBackend;

kernel_source!(MatmulRaw, "../../../shaders/matmul.wgsl");

/// Invocations per workgroup.
const WORKGROUP_SIZE: u32 = 64;
/// The largest grid side the WebGPU limits guarantee.
const MAX_WORKGROUPS_PER_DIM: u32 = 65_535;
/// Rows and columns of the output tile one invocation computes. On lavapipe (2 cores) 8 x 8
/// measured faster than 4 x 4, 2 x 8, 4 x 16 and 1 x 16 on the model's shapes (benches/matmul.rs).
const TILE: (usize, usize) = (8, 8);

/// The kernel, specialised by its tile.
#[derive(Debug)]
struct Matmul {
    cube_dim: CubeDim,
    tm: usize,
    tn: usize,
}

impl Matmul {
    fn new(tm: usize, tn: usize) -> Self {
        Self { cube_dim: CubeDim::new_1d(WORKGROUP_SIZE), tm, tn }
    }

    /// The unrolled blocks of the template (see the comments at their places in the shader).
    fn blocks(&self) -> [(&'static str, String); 6] {
        let (rows, cols) = (0..self.tm, 0..self.tn);
        let pairs = || rows.clone().flat_map(|i| cols.clone().map(move |j| (i, j)));
        let bases = rows
            .clone()
            .map(|i| format!("    let a{i} = lhs_b + min(m0 + {i}u, m - 1u) * info[7];\n"))
            .chain(cols.clone().map(|j| format!("    let c{j} = rhs_b + min(n0 + {j}u, n - 1u) * info[12];\n")))
            .collect();
        let init_acc = pairs().map(|(i, j)| format!("    var acc{i}_{j} = 0.0;\n")).collect();
        let load_lhs = rows.clone().map(|i| format!("        let x{i} = lhs[a{i} + kk * lhs_sk];\n")).collect();
        let load_rhs = cols.clone().map(|j| format!("        let y{j} = rhs[c{j} + kk * rhs_sk];\n")).collect();
        let update_acc = pairs().map(|(i, j)| format!("        acc{i}_{j} += x{i} * y{j};\n")).collect();
        let store_out = pairs()
            .map(|(i, j)| format!("    if (m0 + {i}u < m && n0 + {j}u < n) {{ out[out_b + (m0 + {i}u) * n + n0 + {j}u] = acc{i}_{j}; }}\n"))
            .collect();
        [
            ("bases", bases),
            ("init_acc", init_acc),
            ("load_lhs", load_lhs),
            ("load_rhs", load_rhs),
            ("update_acc", update_acc),
            ("store_out", store_out),
        ]
    }
}

impl KernelSource for Matmul {
    fn source(&self) -> SourceTemplate {
        let template = MatmulRaw::new()
            .source()
            .register("workgroup_size", self.cube_dim.0.x.to_string())
            .register("tm", self.tm.to_string())
            .register("tn", self.tn.to_string());
        self.blocks().into_iter().fold(template, |t, (name, code)| t.register(name, code))
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.cube_dim, self.tm, self.tn))
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

/// A stride as the kernel's `u32`, 0 along a broadcast (size 1) batch axis.
fn stride(t: &CubeTensor, axis: usize) -> u32 {
    let s = if axis < 2 && t.meta.shape()[axis] == 1 { 0 } else { t.meta.strides()[axis] };
    u32::try_from(s).expect("the matmul kernel takes strides below 2^32")
}

/// `lhs @ rhs` with the given tile, for `[b1, b2, m, k] @ [b1, b2, k, n]` (a batch axis of
/// either may be 1 and is then broadcast), read through the inputs' strides. `k > 0`.
fn launch_matmul(lhs: CubeTensor, rhs: CubeTensor, tile: (usize, usize)) -> CubeTensor {
    assert_eq!(lhs.dtype, DType::F32, "the matmul kernel takes f32 inputs, lhs is {:?}", lhs.dtype);
    assert_eq!(rhs.dtype, DType::F32, "the matmul kernel takes f32 inputs, rhs is {:?}", rhs.dtype);
    let (ls, rs) = (lhs.meta.shape(), rhs.meta.shape());
    assert!(ls.len() == 4 && rs.len() == 4, "the matmul kernel takes rank-4 tensors, got {ls:?} and {rs:?}");
    let (m, k, n) = (ls[2], ls[3], rs[3]);
    assert_eq!(k, rs[2], "lhs {ls:?} and rhs {rs:?} disagree on k");
    assert!(k > 0, "the matmul kernel needs k > 0");
    let mut batch = [0; 2];
    for axis in 0..2 {
        let (a, b) = (ls[axis], rs[axis]);
        assert!(a == b || a == 1 || b == 1, "lhs {ls:?} and rhs {rs:?} have batches that do not broadcast");
        batch[axis] = a.max(b);
    }
    let client = lhs.client.clone();
    let shape = Shape::new([batch[0], batch[1], m, n]);
    let handle = client.empty(shape.num_elements().max(1) * DType::F32.size());
    let out = CubeTensor::new_contiguous(client.clone(), lhs.device.clone(), shape, handle, DType::F32);
    if batch[0] * batch[1] * m * n == 0 {
        return out;
    }
    let (tm, tn) = tile;
    let (tiles_m, tiles_n) = (m.div_ceil(tm), n.div_ceil(tn));
    let as_u32 = |v: usize| u32::try_from(v).expect("the matmul kernel takes sizes below 2^32");
    // The tile index is a u32 too.
    let total = as_u32(batch[0] * batch[1] * tiles_m * tiles_n) as usize;
    let info = [
        as_u32(batch[0]),
        as_u32(batch[1]),
        as_u32(m),
        as_u32(n),
        as_u32(k),
        stride(&lhs, 0),
        stride(&lhs, 1),
        stride(&lhs, 2),
        stride(&lhs, 3),
        stride(&rhs, 0),
        stride(&rhs, 1),
        stride(&rhs, 2),
        stride(&rhs, 3),
        as_u32(tiles_m),
        as_u32(tiles_n),
    ];
    let info = client.create_from_slice(bytemuck::cast_slice(&info));
    let kernel = Matmul::new(tm, tn);
    let cube_dim = kernel.cube_dim;
    let (gx, gy) = grid(total);
    client.launch(
        Box::new(SourceKernel::new(kernel, cube_dim)),
        CubeCount::Static(gx, gy, 1),
        KernelArguments::new().with_buffers(vec![
            lhs.handle.binding(),
            rhs.handle.binding(),
            out.handle.clone().binding(),
            info.binding(),
        ]),
    );
    out
}

impl MatmulBackend for CubeBackend {
    fn tiled_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        launch_matmul(lhs, rhs, TILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_fills_every_placeholder() {
        for (tm, tn) in [(1, 1), (4, 4), (2, 8)] {
            let src = Matmul::new(tm, tn).source().complete();
            assert!(!src.contains("{{"), "{src}");
            assert!(src.contains("@workgroup_size(64, 1, 1)"));
            let (i, j) = (tm - 1, tn - 1);
            assert!(src.contains(&format!("acc{i}_{j} += x{i} * y{j};")), "{src}");
            assert!(src.contains(&format!("out[out_b + (m0 + {i}u) * n + n0 + {j}u] = acc{i}_{j};")), "{src}");
        }
    }

    #[test]
    fn the_grid_covers_every_tile_within_the_limits() {
        for n in [1, 63, 64, 65, 64 * 65_535, 64 * 65_535 + 1, 50_000_000] {
            let (gx, gy) = grid(n);
            assert!(gx <= MAX_WORKGROUPS_PER_DIM && gy <= MAX_WORKGROUPS_PER_DIM);
            assert!(gx as usize * gy as usize * WORKGROUP_SIZE as usize >= n, "n = {n}");
        }
    }
}
