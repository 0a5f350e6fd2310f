//! Launch of `shaders/quantize.wgsl` on the cubecl backend's wgpu runtime: template parameters,
//! output buffers, the info buffer and the dispatch grid.
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

use super::QuantizeBackend;

kernel_source!(QuantizeRaw, "../../../shaders/quantize.wgsl");

/// Invocations per workgroup.
pub(crate) const WORKGROUP_SIZE: u32 = 64;
/// The longest row the kernel takes, in floats; the unrolled code grows with `d`.
pub(crate) const MAX_D: usize = 1024;
/// Floats of `x` one invocation keeps in registers: `rows_per_invocation(d) * d` stays near it.
const ROW_FLOATS: usize = 256;
/// The largest grid side the WebGPU limits guarantee.
const MAX_WORKGROUPS_PER_DIM: u32 = 65_535;

/// The kernel, specialised by its template parameters.
#[derive(Debug)]
struct Quantize {
    cube_dim: CubeDim,
    /// Floats per load: 4 (`vec4<f32>`) when `d % 4 == 0`, else 1.
    vec: usize,
    /// Row length in floats.
    d: usize,
    /// Rows of `x` per invocation.
    rows: usize,
}

impl Quantize {
    fn new(d: usize) -> Self {
        let vec = if d % 4 == 0 { 4 } else { 1 };
        Self { cube_dim: CubeDim::new_1d(WORKGROUP_SIZE), vec, d, rows: rows_per_invocation(d) }
    }

    /// The unrolled blocks of the template (see the comments at their places in the shader).
    fn blocks(&self) -> [(&'static str, String); 5] {
        let (rows, d) = (0..self.rows, 0..self.d / self.vec);
        let mut load_rows = String::new();
        for r in rows.clone() {
            load_rows += &format!("    let row{r} = row_of(first, {r}u, local, n);\n");
            for j in d.clone() {
                load_rows += &format!("    let x{r}_{j} = x[row{r} * D + {j}u];\n");
            }
        }
        let init_best: String = rows
            .clone()
            .map(|r| format!("    var best{r} = bitcast<f32>(0x7f800000u); // +inf\n    var index{r} = 0u;\n"))
            .collect();
        let load_code: String = d.clone().map(|j| format!("        let q{j} = codebook[c * D + {j}u];\n")).collect();
        let update_rows: String = rows
            .clone()
            .map(|r| {
                let dist: Vec<String> = d.clone().map(|j| format!("sq(x{r}_{j} - q{j})")).collect();
                format!("        update({}, c, &best{r}, &index{r});\n", dist.join(" + "))
            })
            .collect();
        let store_rows: String = rows.map(|r| format!("    store(first, {r}u, local, n, best{r}, index{r});\n")).collect();
        [
            ("load_rows", load_rows),
            ("init_best", init_best),
            ("load_code", load_code),
            ("update_rows", update_rows),
            ("store_rows", store_rows),
        ]
    }
}

impl KernelSource for Quantize {
    fn source(&self) -> SourceTemplate {
        let (elem, sum_squares) = match self.vec {
            4 => ("vec4<f32>", "dot(v, v)"),
            _ => ("f32", "v * v"),
        };
        let template = QuantizeRaw::new()
            .source()
            .register("workgroup_size", self.cube_dim.0.x.to_string())
            .register("rows", self.rows.to_string())
            .register("d", (self.d / self.vec).to_string())
            .register("elem", elem)
            .register("sum_squares", sum_squares);
        self.blocks().into_iter().fold(template, |t, (name, code)| t.register(name, code))
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.cube_dim, self.vec, self.d, self.rows))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// Whether the kernel handles rows of `d` floats.
pub(crate) fn kernel_supports(d: usize) -> bool {
    (1..=MAX_D).contains(&d)
}

/// Rows per invocation: the largest power of two up to 8 with `rows * d <= ROW_FLOATS`, at
/// least 1. More rows share each codebook load; fewer keep long rows in registers.
fn rows_per_invocation(d: usize) -> usize {
    1 << (ROW_FLOATS / d).clamp(1, 8).ilog2()
}

/// The grid of workgroups covering `n` rows, `rows` per invocation:
/// `x * y >= ceil(n / (WORKGROUP_SIZE * rows))`.
fn grid(n: usize, rows: usize) -> (u32, u32) {
    let groups = n.div_ceil(WORKGROUP_SIZE as usize * rows) as u32;
    if groups <= MAX_WORKGROUPS_PER_DIM {
        (groups, 1)
    } else {
        (MAX_WORKGROUPS_PER_DIM, groups.div_ceil(MAX_WORKGROUPS_PER_DIM))
    }
}

impl QuantizeBackend for CubeBackend {
    fn nearest_code(x: FloatTensor<Self>, codebook: FloatTensor<Self>) -> (FloatTensor<Self>, IntTensor<Self>) {
        x.assert_is_on_same_device(&codebook);
        assert_eq!(x.dtype, DType::F32, "the quantize kernel takes f32 inputs, x is {:?}", x.dtype);
        assert_eq!(codebook.dtype, DType::F32, "the quantize kernel takes f32 inputs, the codebook is {:?}", codebook.dtype);
        let (x, codebook) = (into_contiguous(x), into_contiguous(codebook));
        let [n, d] = [x.meta.shape()[0], x.meta.shape()[1]];
        let k = codebook.meta.shape()[0];
        assert!(kernel_supports(d), "the quantize kernel takes 1 to {MAX_D} columns, got {d}");
        assert!(k > 0, "empty codebook");

        let client = x.client.clone();
        let dist_out = client.empty(n.max(1) * DType::F32.size());
        let index_out = client.empty(n.max(1) * DType::I32.size());
        let dist = CubeTensor::new_contiguous(client.clone(), x.device.clone(), Shape::new([n]), dist_out, DType::F32);
        let index = CubeTensor::new_contiguous(client.clone(), x.device.clone(), Shape::new([n]), index_out, DType::I32);
        if n == 0 {
            return (dist, index);
        }

        let kernel = Quantize::new(d);
        let info = [n as u32, k as u32];
        let info = client.create_from_slice(bytemuck::cast_slice(&info));
        let (gx, gy) = grid(n, kernel.rows);
        let cube_dim = kernel.cube_dim;
        client.launch(
            Box::new(SourceKernel::new(kernel, cube_dim)),
            CubeCount::Static(gx, gy, 1),
            KernelArguments::new().with_buffers(vec![
                x.handle.binding(),
                codebook.handle.binding(),
                index.handle.clone().binding(),
                dist.handle.clone().binding(),
                info.binding(),
            ]),
        );
        (dist, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_covers_every_row_within_the_limits() {
        for rows in [1, 2, 8] {
            for n in [1, 63, 64, 65, 12_101, 100_000, 64 * 65_535, 64 * 65_535 + 1, 50_000_000] {
                let (gx, gy) = grid(n, rows);
                assert!(gx <= MAX_WORKGROUPS_PER_DIM && gy <= MAX_WORKGROUPS_PER_DIM);
                assert!(gx as usize * gy as usize * WORKGROUP_SIZE as usize * rows >= n, "n = {n}");
            }
        }
    }

    #[test]
    fn rows_per_invocation_is_a_power_of_two_up_to_eight() {
        let got: Vec<usize> = [1, 7, 32, 33, 64, 100, 128, 130, 256, 257, 1024].map(rows_per_invocation).to_vec();
        assert_eq!(got, vec![8, 8, 8, 4, 4, 2, 2, 1, 1, 1, 1]);
    }

    #[test]
    fn the_template_fills_every_placeholder() {
        for d in [7, 32, 130] {
            let kernel = Quantize::new(d);
            let src = kernel.source().complete();
            assert!(!src.contains("{{"), "{src}");
            assert!(src.contains("@workgroup_size(64, 1, 1)"));
            let last = kernel.rows - 1;
            assert!(src.contains(&format!("update(sq(x{last}_0 - q0)")), "{src}");
            assert!(src.contains(&format!("store(first, {last}u, local, n, best{last}, index{last});")));
        }
    }
}
