//! Run-time choice of the Burn device, and `sidrec info`.
//!
//! - `wgpu`: the best adapter wgpu finds (Vulkan, Metal or DX12; a discrete GPU first);
//! - `wgpu-cpu`: a software adapter on the same backend (lavapipe on Linux), as CI uses;
//! - `cpu`: Burn's pure-Rust flex backend, no graphics driver needed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, Result};
use burn::tensor::wgpu::wgpu;
use burn::tensor::{DType, Device, DeviceKind};

/// Which device a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
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
            DeviceChoice::Wgpu => "wgpu",
            DeviceChoice::WgpuCpu => "wgpu-cpu",
            DeviceChoice::Cpu => "cpu",
        })
    }
}

impl DeviceChoice {
    /// How many tokens to pad sequence batches to by default: on wgpu each distinct shape
    /// compiles kernels, so lengths are bucketed; the CPU backend pads to the longest only.
    pub fn default_pad_multiple(self) -> usize {
        match self {
            DeviceChoice::Cpu => 1,
            DeviceChoice::Wgpu | DeviceChoice::WgpuCpu => 16,
        }
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
        let initialised = match self {
            DeviceChoice::Cpu => (Device::flex(), None),
            DeviceChoice::Wgpu | DeviceChoice::WgpuCpu => {
                let kind = if self == DeviceChoice::Wgpu { DeviceKind::DefaultDevice } else { DeviceKind::Cpu };
                let (device, setup) = Device::wgpu_options().device_kind(kind).init_with_setup().map_err(|e| {
                    anyhow!(
                        "no usable wgpu adapter for --device {self}: {e}. Install a Vulkan driver \
                         (for a software one: apt-get install mesa-vulkan-drivers libvulkan1), or use \
                         --device cpu"
                    )
                })?;
                let summary = AdapterSummary { info: setup.adapter.get_info(), limits: setup.adapter.limits() };
                (device, Some(summary))
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
