//! Run-time choice of the Burn device, and `sidrec info`.
//!
//! - `auto` (the default): a physical GPU through Vulkan, Metal or DX12 (a discrete one first,
//!   then an integrated one), else Burn's CPU backend. It never takes an OpenGL adapter or a
//!   software rasteriser (lavapipe, llvmpipe, WARP): on a machine without a GPU they are many
//!   times slower than the CPU backend, and wgpu's GL path can deadlock there. It asks only the
//!   Vulkan, Metal and DX12 backends, so GL is not even initialised. It says in one line what it
//!   chose and why.
//! - `wgpu`: the best adapter wgpu finds, whatever it is (wgpu's own choice);
//! - `wgpu-cpu`: the software Vulkan adapter (lavapipe on Linux), as CI uses; pinned to Vulkan,
//!   so it fails with what to install rather than falling back to GL;
//! - `cpu`: Burn's pure-Rust flex backend, no graphics driver needed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, Result};
use burn::tensor::wgpu::{wgpu, WgpuBackend};
use burn::tensor::{DType, Device, DeviceKind};

/// Which device a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// A physical GPU through Vulkan, Metal or DX12, else the CPU backend (never GL or a
    /// software rasteriser).
    Auto,
    /// The best adapter wgpu finds (Vulkan, Metal, DX12).
    Wgpu,
    /// A software wgpu adapter (e.g. Mesa's lavapipe).
    WgpuCpu,
    /// Burn's CPU backend (flex).
    Cpu,
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Wgpu => "wgpu",
            DeviceChoice::WgpuCpu => "wgpu-cpu",
            DeviceChoice::Cpu => "cpu",
        })
    }
}

impl DeviceChoice {
}

/// A wgpu adapter as `auto` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterEntry {
    /// The adapter's name.
    pub name: String,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: wgpu::DeviceType,
    /// The graphics API it was found through.
    pub backend: wgpu::Backend,
}

/// What `auto` resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoTarget {
    /// A physical GPU: the first adapter of `kind` found through `api`.
    Gpu {
        /// Burn's selector (`DiscreteGpu(0)` or `IntegratedGpu(0)` of that API).
        kind: DeviceKind,
        /// The graphics API, pinned so that wgpu never falls back to another.
        api: WgpuBackend,
        /// The adapter's name.
        name: String,
    },
    /// Burn's CPU backend.
    Cpu,
}

/// `auto`'s choice and the one line that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoPick {
    /// The device to start.
    pub target: AutoTarget,
    /// Why, for the user.
    pub reason: String,
}

/// The APIs `auto` considers, in order of preference.
const AUTO_APIS: [(wgpu::Backend, WgpuBackend); 3] =
    [(wgpu::Backend::Vulkan, WgpuBackend::Vulkan), (wgpu::Backend::Metal, WgpuBackend::Metal), (wgpu::Backend::Dx12, WgpuBackend::Dx12)];

/// The adapters of the Vulkan, Metal and DX12 backends, in each backend's enumeration order
/// (GL is not initialised).
pub fn primary_adapters() -> Vec<AdapterEntry> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let instance = wgpu::Instance::new(desc);
    AUTO_APIS
        .iter()
        .flat_map(|(backend, _)| pollster::block_on(instance.enumerate_adapters(wgpu::Backends::from(*backend))))
        .map(|a| {
            let i = a.get_info();
            AdapterEntry { name: i.name, device_type: i.device_type, backend: i.backend }
        })
        .collect()
}

/// `auto`'s choice among `adapters`: the first discrete GPU through Vulkan, Metal or DX12 (in
/// that order of APIs), else the first integrated one, else the CPU backend. Software adapters
/// (`DeviceType::Cpu`), virtual and unknown ones are never chosen.
pub fn pick_auto(adapters: &[AdapterEntry]) -> AutoPick {
    for (wanted, label) in [(wgpu::DeviceType::DiscreteGpu, "discrete"), (wgpu::DeviceType::IntegratedGpu, "integrated")] {
        for (backend, api) in AUTO_APIS {
            if let Some(a) = adapters.iter().find(|a| a.backend == backend && a.device_type == wanted) {
                let kind = if wanted == wgpu::DeviceType::DiscreteGpu { DeviceKind::DiscreteGpu(0) } else { DeviceKind::IntegratedGpu(0) };
                return AutoPick {
                    target: AutoTarget::Gpu { kind, api, name: a.name.clone() },
                    reason: format!("device auto: {} ({label} GPU, {backend:?})", a.name),
                };
            }
        }
    }
    let others: Vec<String> = adapters.iter().map(|a| format!("{} ({:?}, {:?})", a.name, a.device_type, a.backend)).collect();
    let seen = if others.is_empty() { "no Vulkan, Metal or DX12 adapter".to_string() } else { format!("only {}", others.join(", ")) };
    AutoPick {
        target: AutoTarget::Cpu,
        reason: format!(
            "device auto: Burn's CPU backend, as no physical GPU was found ({seen}); software adapters are slower than it \
             (ask for one with --device wgpu-cpu)"
        ),
    }
}

/// What the wgpu runtime chose for a device.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Adapter description.
    pub info: wgpu::AdapterInfo,
    /// Its limits.
    pub limits: wgpu::Limits,
}

type Initialised = (Device, Option<AdapterSummary>);

/// Devices already initialised in this process (a wgpu runtime can be initialised only once).
fn registry() -> &'static Mutex<HashMap<DeviceChoice, Initialised>> {
    static DEVICES: OnceLock<Mutex<HashMap<DeviceChoice, Initialised>>> = OnceLock::new();
    DEVICES.get_or_init(Default::default)
}

impl DeviceChoice {
    /// Initialises (once per process) and returns the device, or a clear error when no
    /// adapter of that kind exists.
    pub fn init(self) -> Result<Device> {
        Ok(self.init_with_summary()?.0)
    }

    /// Like [`DeviceChoice::init`], also returning the chosen adapter for wgpu devices.
    pub fn init_with_summary(self) -> Result<Initialised> {
        let mut devices = registry().lock().map_err(|_| anyhow!("device registry poisoned"))?;
        if let Some(d) = devices.get(&self) {
            return Ok(d.clone());
        }
        let wgpu_device = |kind: DeviceKind, api: Option<WgpuBackend>| wgpu_device(self, kind, api);
        let initialised = match self {
            DeviceChoice::Cpu => (Device::flex(), None),
            DeviceChoice::Wgpu => wgpu_device(DeviceKind::DefaultDevice, None)?,
            DeviceChoice::WgpuCpu => wgpu_device(DeviceKind::Cpu, Some(WgpuBackend::Vulkan))?,
            DeviceChoice::Auto => {
                let pick = pick_auto(&primary_adapters());
                eprintln!("{}", pick.reason);
                match pick.target {
                    AutoTarget::Cpu => (Device::flex(), None),
                    AutoTarget::Gpu { kind, api, .. } => wgpu_device(kind, Some(api))?,
                }
            }
        };
        devices.insert(self, initialised.clone());
        Ok(initialised)
    }
}

/// Starts the wgpu device `kind` (through `api` when given) for `--device choice`.
fn wgpu_device(choice: DeviceChoice, kind: DeviceKind, api: Option<WgpuBackend>) -> Result<Initialised> {
    let options = Device::wgpu_options().device_kind(kind);
    let options = match api {
        Some(api) => options.graphics_api(api),
        None => options,
    };
    let (device, setup) = options.init_with_setup().map_err(|e| {
        anyhow!(
            "no usable wgpu adapter for --device {choice}: {e}. Install a Vulkan driver \
             (for a software one: apt-get install mesa-vulkan-drivers libvulkan1), or use \
             --device cpu"
        )
    })?;
    Ok((device, Some(AdapterSummary { info: setup.adapter.get_info(), limits: setup.adapter.limits() })))
}

/// Which replica devices `--devices` asks for: a count (`--devices 2`: indices 0 and 1) or a
/// list of adapter indices (`--devices 0,2`; one index alone as `--devices 1,`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The first N indices.
    Count(usize),
    /// These indices.
    Indices(Vec<usize>),
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        let bad = || format!("--devices {s:?}: give a count (2) or comma-separated adapter indices (0,2; one index alone: 1,)");
        if !s.contains(',') {
            return match s.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(DeviceSpec::Count(n)),
                _ => Err(bad()),
            };
        }
        let v: Vec<usize> = s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.parse::<usize>()).collect::<std::result::Result<_, _>>().map_err(|_| bad())?;
        if v.is_empty() {
            return Err(bad());
        }
        Ok(DeviceSpec::Indices(v))
    }
}

impl DeviceSpec {
    /// The adapter indices, for the ranks of a machine each taking `len()` of them in turn:
    /// local rank `r` takes `r * len() ..` for a count (a list cannot be shared out).
    pub fn indices(&self, local_rank: usize) -> Result<Vec<usize>> {
        match self {
            DeviceSpec::Count(n) => Ok((local_rank * n..(local_rank + 1) * n).collect()),
            DeviceSpec::Indices(v) if local_rank == 0 => Ok(v.clone()),
            DeviceSpec::Indices(_) => Err(anyhow!(
                "--devices with a list of adapter indices cannot be shared among the MPI ranks of one machine; \
                 give a count (each rank r takes indices r*N .. r*N+N-1) or one rank per machine"
            )),
        }
    }
}

/// What the data-parallel indices of a `--device` choice refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParallelTargets {
    /// One device only (Burn's CPU backend, the software adapter): every index is that device.
    Shared(String),
    /// Physical GPUs of one kind through one graphics API, index `i` = the `i`th of them.
    Gpus {
        /// Discrete or integrated.
        discrete: bool,
        /// The API.
        api: WgpuBackend,
        /// Each adapter's name and API, by index.
        names: Vec<String>,
    },
}

/// The devices `--devices` indexes for `choice` (`sidrec info` lists them).
pub fn parallel_targets(choice: DeviceChoice) -> ParallelTargets {
    let shared_cpu = || ParallelTargets::Shared("Burn's CPU backend (flex), one device".into());
    match choice {
        DeviceChoice::Cpu => shared_cpu(),
        DeviceChoice::WgpuCpu => ParallelTargets::Shared("the software Vulkan adapter, one device".into()),
        DeviceChoice::Auto | DeviceChoice::Wgpu => {
            let adapters = primary_adapters();
            match pick_auto(&adapters).target {
                AutoTarget::Cpu if choice == DeviceChoice::Auto => shared_cpu(),
                AutoTarget::Cpu => ParallelTargets::Shared("wgpu's default adapter, one device".into()),
                AutoTarget::Gpu { kind, api, .. } => {
                    let discrete = matches!(kind, DeviceKind::DiscreteGpu(_));
                    let wanted = if discrete { wgpu::DeviceType::DiscreteGpu } else { wgpu::DeviceType::IntegratedGpu };
                    let backend = AUTO_APIS.iter().find(|(_, a)| *a == api).map(|(b, _)| *b);
                    let names = adapters
                        .iter()
                        .filter(|a| a.device_type == wanted && Some(a.backend) == backend)
                        .map(|a| format!("{} ({:?}, {:?})", a.name, a.device_type, a.backend))
                        .collect();
                    ParallelTargets::Gpus { discrete, api, names }
                }
            }
        }
    }
}

/// The device of adapter index `index` for `--device choice` (index 0 is `choice.init()`); on
/// a one-device choice every index is that device.
pub fn init_indexed(choice: DeviceChoice, index: usize) -> Result<Device> {
    if index == 0 {
        return choice.init();
    }
    match parallel_targets(choice) {
        ParallelTargets::Shared(_) => choice.init(),
        ParallelTargets::Gpus { discrete, api, names } => {
            if index >= names.len() {
                return Err(anyhow!(
                    "--devices: adapter index {index} does not exist; --device {choice} has {} (see sidrec info): {}",
                    names.len(),
                    names.join(", ")
                ));
            }
            static INDEXED: OnceLock<Mutex<HashMap<(DeviceChoice, usize), Device>>> = OnceLock::new();
            let mut known = INDEXED.get_or_init(Default::default).lock().map_err(|_| anyhow!("device registry poisoned"))?;
            if let Some(d) = known.get(&(choice, index)) {
                return Ok(d.clone());
            }
            let kind = if discrete { DeviceKind::DiscreteGpu(index) } else { DeviceKind::IntegratedGpu(index) };
            let (device, _) = wgpu_device(choice, kind, Some(api))?;
            known.insert((choice, index), device.clone());
            Ok(device)
        }
    }
}

/// The replica devices of `indices` for `--device choice`, the first the main one, with a note
/// when several replicas share one device.
pub fn replica_devices(choice: DeviceChoice, indices: &[usize]) -> Result<(Vec<Device>, Option<String>)> {
    let devices = indices.iter().map(|&i| init_indexed(choice, i)).collect::<Result<Vec<_>>>()?;
    let mut distinct: Vec<&Device> = Vec::new();
    for d in &devices {
        if !distinct.contains(&d) {
            distinct.push(d);
        }
    }
    let note = (distinct.len() < devices.len()).then(|| {
        let what = match parallel_targets(choice) {
            ParallelTargets::Shared(what) => what,
            ParallelTargets::Gpus { .. } => "a repeated adapter index".into(),
        };
        format!(
            "note: {} replicas on {} device(s) ({what}): the results are those of {} devices, the replicas run one after \
             the other there, without a speed-up",
            devices.len(),
            distinct.len(),
            devices.len()
        )
    });
    Ok((devices, note))
}

/// Every adapter wgpu can see, on every backend compiled in.
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters.iter().map(|a| a.get_info()).collect()
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1 << 20))
}

/// The text `sidrec info` prints: the adapters found, the chosen one, its limits and the float
/// types the device supports.
pub fn info_report(choice: DeviceChoice) -> Result<String> {
    let mut out = String::new();
    let adapters = list_adapters();
    writeln!(out, "wgpu adapters found: {}", adapters.len())?;
    for (i, a) in adapters.iter().enumerate() {
        writeln!(out, "  [{i}] {} ({:?}, {:?}, driver: {} {})", a.name, a.backend, a.device_type, a.driver, a.driver_info)?;
    }
    writeln!(out, "--device auto would take: {}", pick_auto(&primary_adapters()).reason.trim_start_matches("device auto: "))?;
    match parallel_targets(choice) {
        ParallelTargets::Shared(what) => writeln!(
            out,
            "data-parallel indices (--devices, MPI local rank) for --device {choice}: {what}; every index is that device \
             (replicas there give the same results as on separate devices, without a speed-up)"
        )?,
        ParallelTargets::Gpus { names, .. } => {
            writeln!(out, "data-parallel indices (--devices N takes 0..N-1, an MPI rank its local rank) for --device {choice}:")?;
            for (i, n) in names.iter().enumerate() {
                writeln!(out, "  [{i}] {n}")?;
            }
        }
    }
    let (device, summary) = choice.init_with_summary()?;
    writeln!(out, "chosen (--device {choice}): {device:?}")?;
    match summary {
        Some(AdapterSummary { info, limits }) => {
            writeln!(out, "  adapter: {} ({:?}, {:?})", info.name, info.backend, info.device_type)?;
            writeln!(out, "  max buffer size: {}", mib(limits.max_buffer_size))?;
            writeln!(out, "  max storage buffer binding: {}", mib(limits.max_storage_buffer_binding_size))?;
            writeln!(
                out,
                "  max workgroup: {} invocations, x <= {}, {} KiB shared memory",
                limits.max_compute_invocations_per_workgroup,
                limits.max_compute_workgroup_size_x,
                limits.max_compute_workgroup_storage_size / 1024
            )?;
        }
        None => writeln!(out, "  Burn's CPU backend (flex); no graphics adapter involved")?,
    }
    let floats: Vec<&str> = [(DType::F16, "f16"), (DType::BF16, "bf16"), (DType::F32, "f32"), (DType::F64, "f64")]
        .into_iter()
        .filter(|(d, _)| device.supports_dtype(*d))
        .map(|(_, n)| n)
        .collect();
    write!(out, "  float types: {}", floats.join(", "))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, device_type: wgpu::DeviceType, backend: wgpu::Backend) -> AdapterEntry {
        AdapterEntry { name: name.into(), device_type, backend }
    }

    #[test]
    fn auto_takes_a_physical_gpu_and_never_a_software_or_gl_adapter() {
        use wgpu::{Backend, DeviceType};
        let lavapipe = adapter("llvmpipe (LLVM 15.0.6, 256 bits)", DeviceType::Cpu, Backend::Vulkan);
        let igpu = adapter("Intel(R) UHD Graphics 630", DeviceType::IntegratedGpu, Backend::Vulkan);
        let dgpu = adapter("NVIDIA H200", DeviceType::DiscreteGpu, Backend::Vulkan);
        let gl = adapter("NVIDIA H200/PCIe", DeviceType::DiscreteGpu, Backend::Gl);
        let metal = adapter("Apple M3", DeviceType::IntegratedGpu, Backend::Metal);

        let pick = pick_auto(&[lavapipe.clone(), igpu.clone(), dgpu.clone()]);
        assert_eq!(pick.target, AutoTarget::Gpu { kind: DeviceKind::DiscreteGpu(0), api: WgpuBackend::Vulkan, name: "NVIDIA H200".into() });
        assert!(pick.reason.contains("NVIDIA H200 (discrete GPU, Vulkan)"), "{}", pick.reason);

        let pick = pick_auto(&[lavapipe.clone(), igpu.clone()]);
        assert_eq!(pick.target, AutoTarget::Gpu { kind: DeviceKind::IntegratedGpu(0), api: WgpuBackend::Vulkan, name: igpu.name.clone() });
        let pick = pick_auto(&[metal.clone()]);
        assert_eq!(pick.target, AutoTarget::Gpu { kind: DeviceKind::IntegratedGpu(0), api: WgpuBackend::Metal, name: "Apple M3".into() });

        // A software rasteriser, a GL adapter, or nothing: the CPU backend, saying why.
        for adapters in [vec![lavapipe.clone()], vec![gl.clone()], vec![]] {
            let pick = pick_auto(&adapters);
            assert_eq!(pick.target, AutoTarget::Cpu, "{adapters:?}");
            assert!(pick.reason.contains("CPU backend") && pick.reason.contains("--device wgpu-cpu"), "{}", pick.reason);
        }
        assert!(pick_auto(&[lavapipe]).reason.contains("only llvmpipe"));
    }

    #[test]
    fn device_lists_parse_as_a_count_or_indices() {
        assert_eq!("2".parse::<DeviceSpec>(), Ok(DeviceSpec::Count(2)));
        assert_eq!("0,2".parse::<DeviceSpec>(), Ok(DeviceSpec::Indices(vec![0, 2])));
        assert_eq!("1,".parse::<DeviceSpec>(), Ok(DeviceSpec::Indices(vec![1])));
        for bad in ["0", "x", ",", "1,a", ""] {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad}");
        }
        assert_eq!(DeviceSpec::Count(2).indices(1).unwrap(), vec![2, 3]);
        assert_eq!(DeviceSpec::Indices(vec![3, 1]).indices(0).unwrap(), vec![3, 1]);
        assert!(DeviceSpec::Indices(vec![0]).indices(1).is_err());
    }

    #[test]
    fn cpu_replicas_share_the_one_cpu_device_and_say_so() {
        let (devices, note) = replica_devices(DeviceChoice::Cpu, &[0, 1]).unwrap();
        assert_eq!(devices, vec![Device::flex(), Device::flex()]);
        assert!(note.unwrap().contains("2 replicas on 1 device(s)"));
        assert!(replica_devices(DeviceChoice::Cpu, &[0]).unwrap().1.is_none());
    }

    #[test]
    fn every_choice_parses_and_auto_is_named() {
        for (text, choice) in [("auto", DeviceChoice::Auto), ("wgpu", DeviceChoice::Wgpu), ("wgpu-cpu", DeviceChoice::WgpuCpu), ("cpu", DeviceChoice::Cpu)] {
            assert_eq!(<DeviceChoice as clap::ValueEnum>::from_str(text, false).unwrap(), choice);
            assert_eq!(choice.to_string(), text);
        }
    }
}
