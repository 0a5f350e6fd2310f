//! Data-parallel training: several replicas of the model, each on its share of every batch,
//! whose gradients are summed before one optimizer step.
//!
//! Two levels, which combine:
//! - **In one process, several devices** ([`ParallelRef::devices`]): Burn's multi-device path, on
//!   any backend. One replica per device (`Module::fork`); each replica's gradients are moved to
//!   the main device (`GradientsParams::to_device`, through host memory between wgpu adapters)
//!   and summed there (`GradientsAccumulator`); after the step the replicas are forked again
//!   from the main copy.
//! - **Several processes or machines** ([`ParallelRef::group`], a [`Collective`]; MPI behind the
//!   `mpi` cargo feature, module `mpi`): every rank holds a full replica; its local gradient is
//!   flattened into one host buffer and all-reduced (sum), then every rank takes the same step.
//!
//! **Sharding.** `train.batch_size` is the global batch. Each batch of the epoch's order (a
//! shuffle that depends only on (seed, epoch)) is cut into `ranks` contiguous, near-equal parts
//! ([`shard`]: sizes differ by at most one) and each rank's part into `replicas` parts the same
//! way, so the examples a replica sees depend only on (seed, epoch, step, its position), and
//! every replica runs the same number of steps (a replica whose part of a short last batch is
//! empty contributes nothing).
//!
//! **Token weighting.** The loss is a mean over tokens (label tokens of the generators, target
//! positions of SASRec), and shards hold different numbers of them (IDs of different lengths,
//! sequences of different lengths). A replica back-propagates `n_i * mean_i` (the sum of its
//! tokens' losses), the sums are added, and the total is divided by `N = sum n_i`, reduced with
//! the gradients: `grad = (1/N) sum_i n_i grad(mean_i)`, the gradient of the mean over all `N`
//! tokens, which is what one process with the whole batch computes. Clipping then sees the
//! global gradient, and one AdamW step follows.
//!
//! **Seeds.** Replica `k` (`k = rank * replicas + i`) draws its dropout masks from
//! [`stream_seed`]`(epoch seed, k)`: different per replica, fixed by (seed, epoch, k), and for
//! `k = 0` the single-device seed itself, so a one-replica run is unchanged.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

#[cfg(feature = "mpi")]
pub mod mpi;

/// Environment variables that MPI launchers set in every rank (Open MPI, PMIx, MPICH/Hydra
/// and Slurm's PMI).
pub const LAUNCHER_VARS: [&str; 5] = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS"];

/// Whether an MPI launcher (`mpirun`, `srun --mpi=...`) started this process.
pub fn launched_by_mpi() -> bool {
    LAUNCHER_VARS.iter().any(|v| std::env::var_os(v).is_some())
}

/// The number of ranks the launcher started, when its environment says.
pub fn launcher_world_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"].iter().find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
}

/// A failed collective operation (a rank that died, hangs, or disagrees).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CollectiveError(pub String);

/// The operations the training loop needs from a process group. Every rank must call them in
/// the same order with buffers of the same length.
pub trait Collective {
    /// This process's rank, `0..size`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Returns when every rank has called it (separates waiting for the slowest rank from the
    /// exchange itself in the step timings).
    fn barrier(&self) -> Result<(), CollectiveError>;
    /// Replaces `buf` on every rank by the element-wise sum over all ranks (gradients).
    fn all_reduce_sum_f32(&self, buf: &mut [f32]) -> Result<(), CollectiveError>;
    /// Replaces `buf` on every rank by the element-wise sum over all ranks (statistics).
    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<(), CollectiveError>;
    /// Sends rank 0's `bytes` to every rank (the others' contents are replaced). `patience`
    /// is how long to wait for rank 0 at most (`None`: the group's step timeout).
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, patience: Option<Duration>) -> Result<(), CollectiveError>;
    /// A short description for messages, e.g. `MPI rank 1 of 2`.
    fn describe(&self) -> String {
        format!("rank {} of {}", self.rank(), self.size())
    }
}

/// How a training run is spread: the replicas of this process and the process group.
#[derive(Default, Clone, Copy)]
pub struct ParallelRef<'a> {
    /// Every replica's device (without autodiff), the main one first; empty or one device =
    /// the loop's device alone.
    pub devices: &'a [Device],
    /// The process group (MPI), if any.
    pub group: Option<&'a dyn Collective>,
}

impl ParallelRef<'_> {
    /// This process's rank and the number of ranks (`(0, 1)` without a group).
    pub fn rank_world(&self) -> (usize, usize) {
        self.group.map_or((0, 1), |g| (g.rank(), g.size()))
    }

    /// Replicas in this process (at least 1).
    pub fn replicas(&self) -> usize {
        self.devices.len().max(1)
    }

    /// Whether this is the plain single-device loop.
    pub fn is_single(&self) -> bool {
        self.replicas() == 1 && self.rank_world().1 == 1
    }
}

/// Part `index` of `parts` near-equal contiguous parts of `0..len`: the first `len % parts`
/// parts hold one element more.
pub fn shard(len: usize, parts: usize, index: usize) -> Range<usize> {
    assert!(parts > 0 && index < parts, "part {index} of {parts}");
    let (base, extra) = (len / parts, len % parts);
    let start = index * base + index.min(extra);
    start..start + base + usize::from(index < extra)
}

/// The random stream of replica `k` from a run's (epoch) seed: `seed` itself for `k = 0`,
/// otherwise a SplitMix64 mix of both.
pub fn stream_seed(seed: u64, k: u64) -> u64 {
    if k == 0 {
        return seed;
    }
    let mut z = seed ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Collects every float parameter's gradient (zeros where it has none) flattened, in the
/// module's visiting order, with one presence flag per parameter.
struct Flatten<'a> {
    grads: &'a GradientsParams,
    device: &'a Device,
    parts: Vec<Tensor<1>>,
    present: Vec<f32>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n: usize = param.val().dims().iter().product();
        match self.grads.get::<D>(param.id) {
            Some(g) => {
                self.parts.push(g.to_device(self.device).reshape([n]));
                self.present.push(1.0);
            }
            None => {
                self.parts.push(Tensor::zeros([n], self.device));
                self.present.push(0.0);
            }
        }
    }
}

/// The host buffer of one gradient exchange: every float parameter's gradient of `module`
/// (zeros where `grads` has none) in the module's visiting order, then one presence flag per
/// parameter (1 where a gradient exists), then `extra`. Every rank builds the same layout.
pub fn flatten_grads<M: Module>(module: &M, grads: &GradientsParams, device: &Device, extra: &[f32]) -> Vec<f32> {
    let mut v = Flatten { grads, device, parts: Vec::new(), present: Vec::new() };
    module.visit(&mut v);
    let mut out: Vec<f32> = if v.parts.is_empty() {
        Vec::new()
    } else {
        Tensor::cat(v.parts, 0).into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 gradients")
    };
    out.extend_from_slice(&v.present);
    out.extend_from_slice(extra);
    out
}

/// Rebuilds gradients from a reduced buffer of [`flatten_grads`], each multiplied by `scale`.
struct Spread<'a> {
    flat: Tensor<1>,
    present: &'a [f32],
    offset: usize,
    index: usize,
    scale: f64,
    out: GradientsParams,
}

impl ModuleVisitor for Spread<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let dims = param.val().dims();
        let n: usize = dims.iter().product();
        if self.present[self.index] > 0.0 {
            let g = self.flat.clone().slice([self.offset..self.offset + n]).reshape(dims).mul_scalar(self.scale);
            self.out.register::<D>(param.id, g);
        }
        self.offset += n;
        self.index += 1;
    }
}

/// Counts the float parameters and their elements.
struct Count {
    params: usize,
    elements: usize,
}

impl ModuleVisitor for Count {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.params += 1;
        self.elements += param.val().dims().iter().product::<usize>();
    }
}

/// The number of float parameters of `module` and their total elements.
pub fn float_layout<M: Module>(module: &M) -> (usize, usize) {
    let mut c = Count { params: 0, elements: 0 };
    module.visit(&mut c);
    (c.params, c.elements)
}

/// The gradients of a reduced [`flatten_grads`] buffer on `device`, multiplied by `scale`;
/// parameters whose presence flag is 0 on every rank get none (as in a single process). Also
/// returns the `extra` values that followed.
pub fn spread_grads<M: Module>(module: &M, buf: &[f32], device: &Device, scale: f64) -> (GradientsParams, Vec<f32>) {
    let (params, elements) = float_layout(module);
    assert!(buf.len() >= elements + params, "a gradient buffer of {} values for {elements} + {params}", buf.len());
    let flat = Tensor::<1>::from_data(TensorData::new(buf[..elements].to_vec(), [elements]), device);
    let mut v = Spread { flat, present: &buf[elements..elements + params], offset: 0, index: 0, scale, out: GradientsParams::new() };
    module.visit(&mut v);
    (v.out, buf[elements + params..].to_vec())
}

/// Multiplies every float parameter's gradient by `factor`.
struct ScaleBy<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for ScaleBy<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register::<D>(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// Multiplies every gradient of `module`'s float parameters by `factor`.
pub fn scale_grads<M: Module>(module: &M, grads: &mut GradientsParams, factor: f64) {
    module.visit(&mut ScaleBy { grads, factor });
}

/// CRC-32 of every float parameter's values, in visiting order.
struct Checksum {
    hasher: crc32fast::Hasher,
}

impl ModuleVisitor for Checksum {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v: Vec<f32> = param.val().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 weights");
        self.hasher.update(bytemuck::cast_slice(&v));
    }
}

/// A checksum of `module`'s float parameters (replicas that must be equal compare it).
pub fn weights_checksum<M: Module>(module: &M) -> u32 {
    let mut c = Checksum { hasher: crc32fast::Hasher::new() };
    module.visit(&mut c);
    c.hasher.finalize()
}

/// Sums `(value * weight, weight)` pairs of named metrics over the group and returns the
/// weighted means. Every rank must pass the same keys.
pub fn reduce_metrics(
    group: &dyn Collective,
    local: &BTreeMap<String, f64>,
    weight: f64,
) -> Result<BTreeMap<String, f64>, CollectiveError> {
    let mut buf: Vec<f64> = local.values().map(|v| if weight > 0.0 { v * weight } else { 0.0 }).collect();
    buf.push(weight);
    buf.push(local.len() as f64);
    group.all_reduce_sum_f64(&mut buf)?;
    let total = buf[buf.len() - 2];
    let keys = buf[buf.len() - 1];
    if keys != (local.len() * group.size()) as f64 {
        return Err(CollectiveError(format!("{}: the ranks computed different validation metrics", group.describe())));
    }
    Ok(local.keys().zip(&buf).map(|(k, v)| (k.clone(), if total > 0.0 { v / total } else { f64::NAN })).collect())
}

/// Length-prefixed concatenation of byte strings (one broadcast for several payloads).
pub fn pack(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// The parts of [`pack`].
pub fn unpack(bytes: &[u8]) -> Result<Vec<Vec<u8>>, CollectiveError> {
    let mut parts = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let bad = || CollectiveError("a malformed message from rank 0".into());
        let (len, tail) = rest.split_at_checked(8).ok_or_else(bad)?;
        let len = u64::from_le_bytes(len.try_into().map_err(|_| bad())?) as usize;
        let (part, tail) = tail.split_at_checked(len).ok_or_else(bad)?;
        parts.push(part.to_vec());
        rest = tail;
    }
    Ok(parts)
}

/// A process group of threads in one process, for tests of the multi-rank logic without MPI:
/// every rank runs on its own thread and the collectives meet at a barrier.
pub mod threads {
    use super::*;
    use std::sync::{Arc, Barrier, Mutex};

    struct Shared {
        barrier: Barrier,
        f32s: Mutex<Vec<f32>>,
        f64s: Mutex<Vec<f64>>,
        bytes: Mutex<Vec<u8>>,
    }

    /// One rank of a [`group`].
    pub struct ThreadRank {
        rank: usize,
        size: usize,
        shared: Arc<Shared>,
    }

    /// `size` ranks sharing one in-memory group.
    pub fn group(size: usize) -> Vec<ThreadRank> {
        let shared = Arc::new(Shared {
            barrier: Barrier::new(size),
            f32s: Mutex::new(Vec::new()),
            f64s: Mutex::new(Vec::new()),
            bytes: Mutex::new(Vec::new()),
        });
        (0..size).map(|rank| ThreadRank { rank, size, shared: shared.clone() }).collect()
    }

    fn sum<T: Copy + Default + std::ops::Add<Output = T>>(r: &ThreadRank, acc: &Mutex<Vec<T>>, buf: &mut [T]) {
        // Ranks add in rank order, so every run sums the same way.
        if r.rank == 0 {
            *acc.lock().unwrap() = vec![T::default(); buf.len()];
        }
        for turn in 0..r.size {
            r.shared.barrier.wait();
            if turn == r.rank {
                let mut a = acc.lock().unwrap();
                a.iter_mut().zip(buf.iter()).for_each(|(a, b)| *a = *a + *b);
            }
        }
        r.shared.barrier.wait();
        buf.copy_from_slice(&acc.lock().unwrap());
        r.shared.barrier.wait();
    }

    impl Collective for ThreadRank {
        fn rank(&self) -> usize {
            self.rank
        }
        fn size(&self) -> usize {
            self.size
        }
        fn barrier(&self) -> Result<(), CollectiveError> {
            self.shared.barrier.wait();
            Ok(())
        }
        fn all_reduce_sum_f32(&self, buf: &mut [f32]) -> Result<(), CollectiveError> {
            sum(self, &self.shared.f32s, buf);
            Ok(())
        }
        fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<(), CollectiveError> {
            sum(self, &self.shared.f64s, buf);
            Ok(())
        }
        fn broadcast_bytes(&self, bytes: &mut Vec<u8>, _patience: Option<Duration>) -> Result<(), CollectiveError> {
            if self.rank == 0 {
                *self.shared.bytes.lock().unwrap() = bytes.clone();
            }
            self.shared.barrier.wait();
            if self.rank != 0 {
                *bytes = self.shared.bytes.lock().unwrap().clone();
            }
            self.shared.barrier.wait();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    #[test]
    fn shards_cover_the_batch_in_near_equal_contiguous_parts() {
        for len in 0..40 {
            for parts in 1..6 {
                let ranges: Vec<_> = (0..parts).map(|i| shard(len, parts, i)).collect();
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[parts - 1].end, len);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
            }
        }
        assert_eq!(shard(256, 2, 1), 128..256);
    }

    #[test]
    fn stream_seeds_keep_replica_zero_and_differ_otherwise() {
        assert_eq!(stream_seed(42, 0), 42);
        assert_ne!(stream_seed(42, 1), 42);
        assert_ne!(stream_seed(42, 1), stream_seed(42, 2));
        assert_eq!(stream_seed(42, 3), stream_seed(42, 3));
    }

    #[test]
    fn packed_payloads_round_trip() {
        let parts: [&[u8]; 3] = [b"abc", b"", b"0123456789"];
        assert_eq!(unpack(&pack(&parts)).unwrap(), parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>());
        assert!(unpack(&[1, 2, 3]).is_err());
    }

    /// The token-weighted sum of two shards' gradients, exchanged through the flat buffer, is
    /// the gradient of the mean over the whole batch; an unweighted mean of the shards' means
    /// is not, when the shards hold different numbers of terms.
    #[test]
    fn weighted_shard_gradients_equal_the_whole_batch_gradient() {
        let device = Device::flex();
        let ad = device.clone().autodiff();
        let lin: Linear = crate::seed::init_seeded(3, |h| LinearConfig::new(4, 3).init(h)).to_device(&ad).train();
        let x = crate::seed::normal([10, 4], 9, &ad);
        let mean_loss = |rows: Range<usize>| lin.forward(x.clone().slice([rows, 0..4])).powi_scalar(2).mean();
        let whole = GradientsParams::from_grads(mean_loss(0..10).backward(), &lin);
        let want = flatten_grads(&lin, &whole, &device, &[]);
        // Shards of 3 and 7 rows (x 3 outputs = 9 and 21 terms).
        let (a, b) = (0..3, 3..10);
        let (na, nb) = (9usize, 21usize);
        let ga = GradientsParams::from_grads(mean_loss(a.clone()).mul_scalar(na as f64).backward(), &lin);
        let gb = GradientsParams::from_grads(mean_loss(b.clone()).mul_scalar(nb as f64).backward(), &lin);
        let mut fa = flatten_grads(&lin, &ga, &device, &[na as f32]);
        let fb = flatten_grads(&lin, &gb, &device, &[nb as f32]);
        fa.iter_mut().zip(&fb).for_each(|(x, y)| *x += y);
        let n_total = *fa.last().unwrap() as f64;
        assert_eq!(n_total, 30.0);
        let (grads, extra) = spread_grads(&lin, &fa, &device, 1.0 / n_total);
        assert_eq!(extra, vec![30.0]);
        let got = flatten_grads(&lin, &grads, &device, &[]);
        let max_diff = want.iter().zip(&got).map(|(w, g)| (w - g).abs()).fold(0f32, f32::max);
        assert!(max_diff < 1e-6, "max diff {max_diff}");
        // The unweighted mean of the two shard means differs.
        let ua = GradientsParams::from_grads(mean_loss(a).backward(), &lin);
        let ub = GradientsParams::from_grads(mean_loss(b).backward(), &lin);
        let (fa, fb) = (flatten_grads(&lin, &ua, &device, &[]), flatten_grads(&lin, &ub, &device, &[]));
        let naive: Vec<f32> = fa.iter().zip(&fb).map(|(x, y)| (x + y) / 2.0).collect();
        let naive_diff = want.iter().zip(&naive).take(want.len() - 2).map(|(w, g)| (w - g).abs()).fold(0f32, f32::max);
        assert!(naive_diff > 1e-3, "the unweighted mean should differ: {naive_diff}");
    }

    #[test]
    fn parameters_without_a_gradient_on_every_rank_stay_without_one() {
        let device = Device::flex();
        let lin: Linear = crate::seed::init_seeded(4, |h| LinearConfig::new(2, 2).init(h));
        let empty = GradientsParams::new();
        let buf = flatten_grads(&lin, &empty, &device, &[7.0]);
        let (params, elements) = float_layout(&lin);
        assert_eq!((params, elements), (2, 6));
        assert_eq!(buf.len(), 6 + 2 + 1);
        let (grads, extra) = spread_grads(&lin, &buf, &device, 1.0);
        assert!(grads.is_empty());
        assert_eq!(extra, vec![7.0]);
    }

    #[test]
    fn the_thread_group_sums_and_broadcasts() {
        let ranks = threads::group(3);
        let out: Vec<(Vec<f32>, Vec<u8>)> = std::thread::scope(|s| {
            let handles: Vec<_> = ranks
                .iter()
                .map(|r| {
                    s.spawn(move || {
                        let mut v = vec![r.rank() as f32, 1.0];
                        r.all_reduce_sum_f32(&mut v).unwrap();
                        let mut b = if r.rank() == 0 { b"hello".to_vec() } else { Vec::new() };
                        r.broadcast_bytes(&mut b, None).unwrap();
                        (v, b)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (v, b) in out {
            assert_eq!(v, vec![3.0, 3.0]);
            assert_eq!(b, b"hello");
        }
    }
}
