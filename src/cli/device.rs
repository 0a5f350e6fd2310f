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
        let wgpu_device = |kind: DeviceKind, api: Option<WgpuBackend>| -> Result<Initialised> {
            let options = Device::wgpu_options().device_kind(kind);
            let options = match api {
                Some(api) => options.graphics_api(api),
                None => options,
            };
            let (device, setup) = options.init_with_setup().map_err(|e| {
                anyhow!(
                    "no usable wgpu adapter for --device {self}: {e}. Install a Vulkan driver \
                     (for a software one: apt-get install mesa-vulkan-drivers libvulkan1), or use \
                     --device cpu"
                )
            })?;
            Ok((device, Some(AdapterSummary { info: setup.adapter.get_info(), limits: setup.adapter.limits() })))
        };
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
    fn every_choice_parses_and_auto_is_named() {
        for (text, choice) in [("auto", DeviceChoice::Auto), ("wgpu", DeviceChoice::Wgpu), ("wgpu-cpu", DeviceChoice::WgpuCpu), ("cpu", DeviceChoice::Cpu)] {
            assert_eq!(<DeviceChoice as clap::ValueEnum>::from_str(text, false).unwrap(), choice);
            assert_eq!(choice.to_string(), text);
        }
    }
}
