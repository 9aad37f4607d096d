//! The compute backend, chosen at run time among those compiled in (cargo features).

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::error::ModelError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// burn-flex: pure-Rust CPU (the default; see README for why).
    Flex,
    /// burn-ndarray: CPU, deprecated upstream, kept for comparison.
    Ndarray,
    /// burn-wgpu: GPU through Vulkan/Metal/DX12.
    Wgpu,
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

    pub fn device(self) -> Result<Device, ModelError> {
        match self {
            #[cfg(feature = "flex")]
            BackendKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            BackendKind::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Ok(Device::wgpu(Default::default())),
            #[allow(unreachable_patterns)]
            other => Err(ModelError::Invalid(format!(
                "backend `{other}` is not compiled into this build (rebuild with `--features {other}`)"
            ))),
        }
    }
}

impl Default for BackendKind {
    fn default() -> Self {
        BackendKind::Flex
    }
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
