//! What a device can do, decided in one place: which class of device it is (Burn's CPU
//! backend, a physical GPU through wgpu, or a software wgpu adapter such as lavapipe), which of
//! the custom kernels run there, whether batches should get one fixed shape, and the largest
//! buffer it accepts.
//!
//! Every kernel wrapper, the dropout mask generator and the CLI's batch padding ask
//! [`Capabilities::of`] instead of inspecting the device themselves. The answer depends only on
//! the device, so it is computed once per device and kept for the life of the process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use burn::backend::{DispatchDevice, RuntimeId};
use burn::tensor::Device;

/// The three kinds of device sidrec runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceClass {
    /// Burn's CPU backend (flex).
    Cpu,
    /// A GPU with a physical card behind it, through wgpu (Vulkan, Metal, DX12).
    PhysicalGpu,
    /// A wgpu adapter without a physical card (a software rasteriser such as lavapipe).
    SoftwareAdapter,
    /// Another backend (not built by this crate's features).
    Other,
}

/// What a device can do (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// The kind of device.
    pub class: DeviceClass,
    /// The WGSL kernels (nearest code, item-local attention, tiled matmul) can run: the device
    /// is on the wgpu runtime, which compiles WGSL.
    pub wgsl_kernels: bool,
    /// [`crate::kernels::matmul::MatmulPolicy::Auto`] runs the tiled matmul kernel: only on
    /// software adapters, where Burn's workgroup-memory matmul is slow.
    pub tiled_matmul: bool,
    /// Batches are padded to one shape: every new shape compiles kernels on wgpu, while the CPU
    /// backend pays nothing for it.
    pub fixed_shapes: bool,
    /// The largest buffer the device accepts, in bytes (`None` on the CPU backend).
    pub max_buffer_bytes: Option<u64>,
}

impl Capabilities {
    /// The capabilities of `device` (computed on the first call for a device, then kept).
    pub fn of(device: &Device) -> Capabilities {
        static KNOWN: OnceLock<Mutex<HashMap<String, Capabilities>>> = OnceLock::new();
        let key = format!("{device:?}");
        let known = KNOWN.get_or_init(Default::default);
        if let Some(c) = known.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return *c;
        }
        let c = Self::probe(device);
        known.lock().unwrap_or_else(|e| e.into_inner()).insert(key, c);
        c
    }

    /// Asks the device.
    fn probe(device: &Device) -> Capabilities {
        let inner = device.clone().inner();
        match inner.as_dispatch() {
            DispatchDevice::Flex(_) => Capabilities {
                class: DeviceClass::Cpu,
                wgsl_kernels: false,
                tiled_matmul: false,
                fixed_shapes: false,
                max_buffer_bytes: None,
            },
            DispatchDevice::Cube(d) if d.runtime() == RuntimeId::Wgpu => {
                let client = d.client();
                let props = client.properties();
                let physical = props.identity.physical.is_some();
                Capabilities {
                    class: if physical { DeviceClass::PhysicalGpu } else { DeviceClass::SoftwareAdapter },
                    wgsl_kernels: true,
                    tiled_matmul: !physical,
                    fixed_shapes: true,
                    max_buffer_bytes: Some(props.memory.max_page_size),
                }
            }
            _ => Capabilities { class: DeviceClass::Other, wgsl_kernels: false, tiled_matmul: false, fixed_shapes: true, max_buffer_bytes: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_backend_runs_no_kernel_and_keeps_shapes_free() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let c = Capabilities::of(&device);
            assert_eq!(c.class, DeviceClass::Cpu);
            assert!(!c.wgsl_kernels && !c.tiled_matmul && !c.fixed_shapes && c.max_buffer_bytes.is_none());
            assert_eq!(Capabilities::of(&device), c, "the kept answer is the probed one");
        }
    }
}
