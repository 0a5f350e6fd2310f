//! The process group over MPI (the `mpi` cargo feature: the `mpi` crate, rsmpi, against the
//! system's MPI library, e.g. Debian's Open MPI).
//!
//! A process started by `mpirun` or `srun` (detected from the launcher's environment) joins
//! `MPI_COMM_WORLD`; its local rank (its index among the ranks of its machine, from
//! `MPI_Comm_split_type(SHARED)`) chooses its adapter.
//!
//! **Failures.** Every collective is non-blocking (`MPI_Iallreduce`, `MPI_Ibcast`) and polled
//! against a deadline (`SIDREC_MPI_TIMEOUT_S`, default 600 s): a rank whose peer stops answering
//! (killed, hung, cut off) prints an error naming the operation and ends the job
//! (`MPI_Abort`, exit code 3) instead of hanging forever. Open MPI's launcher also ends the job as soon as one rank dies. An error on
//! any rank ends the whole job through `MPI_Abort` ([`MpiGroup::abort`]), so no rank waits for
//! a peer that has left.

use std::time::{Duration, Instant};

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::{launched_by_mpi, Collective, CollectiveError};

/// The default patience of a collective before a rank gives up on its peers.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// This process's membership of `MPI_COMM_WORLD`.
pub struct MpiGroup {
    // Dropped last: finalises MPI.
    _universe: Universe,
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    local_rank: usize,
    host: String,
    timeout: Duration,
}

impl MpiGroup {
    /// Joins the job when started by an MPI launcher (`None` otherwise).
    pub fn from_env() -> Result<Option<MpiGroup>, CollectiveError> {
        if !launched_by_mpi() {
            return Ok(None);
        }
        let universe = mpi::initialize().ok_or_else(|| CollectiveError("MPI was already initialised in this process".into()))?;
        let world = universe.world();
        let rank = world.rank() as usize;
        let size = world.size() as usize;
        let local = world.split_shared(rank as i32);
        let local_rank = local.rank() as usize;
        let host = mpi::environment::processor_name().unwrap_or_else(|_| "?".into());
        let timeout = match std::env::var("SIDREC_MPI_TIMEOUT_S") {
            Ok(v) => Duration::from_secs_f64(
                v.trim().parse::<f64>().ok().filter(|s| *s > 0.0).ok_or_else(|| CollectiveError(format!("SIDREC_MPI_TIMEOUT_S={v:?}: not a positive number of seconds")))?,
            ),
            Err(_) => DEFAULT_TIMEOUT,
        };
        Ok(Some(MpiGroup { _universe: universe, world, rank, size, local_rank, host, timeout }))
    }

    /// This rank's index among the ranks of its machine (its adapter index).
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// The machine's name as MPI reports it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Ends every rank of the job (`MPI_Abort`) with exit code `code`.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    /// Waits for request `req` until `patience` has passed, then fails naming `what`.
    fn finish<'a, T: ?Sized, S: mpi::request::Scope<'a>>(
        &self,
        mut req: mpi::request::Request<'a, T, S>,
        what: &str,
        patience: Duration,
    ) -> Result<(), CollectiveError> {
        let started = Instant::now();
        let mut polls = 0u64;
        loop {
            match req.test() {
                Ok(_) => return Ok(()),
                Err(r) => req = r,
            }
            if started.elapsed() > patience {
                // The request cannot be cancelled (MPI owns the buffers): say why and end the
                // whole job, which is what the other ranks' own deadlines or the launcher do too.
                eprintln!(
                    "error: MPI rank {} of {} on {}: the {what} did not complete within {:.0} s; another rank died, hangs \
                     or cannot be reached (raise SIDREC_MPI_TIMEOUT_S if a rank is only slow). Ending the job.",
                    self.rank,
                    self.size,
                    self.host,
                    patience.as_secs_f64()
                );
                self.world.abort(3);
            }
            polls += 1;
            // Spin briefly (a step's exchange is short), then sleep to free the core.
            if polls > 2_000 {
                std::thread::sleep(Duration::from_micros(200));
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

impl Collective for MpiGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn barrier(&self) -> Result<(), CollectiveError> {
        self.finish(self.world.immediate_barrier(), "barrier", self.timeout)
    }

    fn all_reduce_sum_f32(&self, buf: &mut [f32]) -> Result<(), CollectiveError> {
        let send = buf.to_vec();
        mpi::request::scope(|scope| {
            let req = self.world.immediate_all_reduce_into(scope, &send[..], buf, SystemOperation::sum());
            self.finish(req, "gradient all-reduce", self.timeout)
        })
    }

    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<(), CollectiveError> {
        let send = buf.to_vec();
        mpi::request::scope(|scope| {
            let req = self.world.immediate_all_reduce_into(scope, &send[..], buf, SystemOperation::sum());
            self.finish(req, "all-reduce of statistics", self.timeout)
        })
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, patience: Option<Duration>) -> Result<(), CollectiveError> {
        let patience = patience.unwrap_or(self.timeout);
        let root = self.world.process_at_rank(0);
        let mut len = [bytes.len() as u64];
        mpi::request::scope(|scope| {
            let req = root.immediate_broadcast_into(scope, &mut len[..]);
            self.finish(req, "broadcast from rank 0", patience)
        })?;
        bytes.resize(len[0] as usize, 0);
        mpi::request::scope(|scope| {
            let req = root.immediate_broadcast_into(scope, &mut bytes[..]);
            self.finish(req, "broadcast from rank 0", patience)
        })
    }

    fn describe(&self) -> String {
        format!("MPI rank {} of {} on {}", self.rank, self.size, self.host)
    }
}
