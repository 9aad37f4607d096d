//! The compute backend, chosen at run time among those compiled in (cargo features).

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, Tensor};

use crate::error::ModelError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendKind {
    /// burn-flex: pure-Rust CPU (the default; see README for why).
    #[default]
    Flex,
    /// burn-ndarray: CPU, deprecated upstream, kept for comparison.
    Ndarray,
    /// burn-wgpu: GPU through Vulkan/Metal/DX12.
    Wgpu,
}

/// Whether `tensor` is f32 on the flex CPU backend, where the model takes flex's own fast paths
/// (its fused attention kernel); false on a build without flex.
pub(crate) fn on_flex_in_f32<const D: usize>(tensor: &Tensor<D>) -> bool {
    flex_in_f32(&tensor.device(), tensor.dtype())
}

/// Whether `device` is flex's and `dtype` f32: also where weights are held in bands (`bands`).
pub(crate) fn flex_in_f32(device: &Device, dtype: impl Into<burn::tensor::DType>) -> bool {
    #[cfg(feature = "flex")]
    {
        dtype.into() == burn::tensor::DType::F32 && *device == Device::flex()
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (device, dtype.into());
        false
    }
}

impl BackendKind {
    pub const ALL: [BackendKind; 3] = [BackendKind::Flex, BackendKind::Ndarray, BackendKind::Wgpu];

    /// Whether this build has the backend's cargo feature.
    pub fn compiled(self) -> bool {
        match self {
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The backend's device, ready to use: a backend that cannot run here (not compiled in, or
    /// wgpu without an adapter) is an error naming it, never a panic at the first tensor.
    pub fn device(self) -> Result<Device, ModelError> {
        match self {
            #[cfg(feature = "flex")]
            BackendKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            BackendKind::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => wgpu_device(),
            #[allow(unreachable_patterns)]
            other => Err(ModelError::Invalid(format!(
                "backend `{other}` is not compiled into this build (rebuild with `--features model/{other}`)"
            ))),
        }
    }
}

/// burn's wgpu device, brought up once per process. `Device::wgpu` is lazy and cubecl panics at
/// the first tensor when no adapter exists ("Unable to acquire wgpu device"); initialising it
/// here returns that failure instead. A runtime can be initialised only once, so the outcome
/// (the device, or the error) is kept for every later call.
#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device, ModelError> {
    use std::sync::OnceLock;
    static DEVICE: OnceLock<Result<Device, String>> = OnceLock::new();
    let device = DEVICE.get_or_init(|| Device::wgpu_options().init().map_err(|e| e.to_string()));
    device.clone().map_err(|cause| {
        ModelError::Invalid(format!(
            "backend `wgpu` cannot start: {cause} (a machine without a GPU needs a software \
             Vulkan driver, e.g. Debian's mesa-vulkan-drivers; or use `--backend flex`)"
        ))
    })
}

impl FromStr for BackendKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flex" | "cpu" => Ok(BackendKind::Flex),
            "ndarray" => Ok(BackendKind::Ndarray),
            "wgpu" | "gpu" => Ok(BackendKind::Wgpu),
            _ => Err(ModelError::Invalid(format!(
                "unknown backend `{s}` (expected flex, ndarray or wgpu)"
            ))),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
        })
    }
}
