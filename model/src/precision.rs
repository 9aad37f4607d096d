//! The compute precision (`--dtype`): the float type weights are materialized in and the
//! forward pass runs in. Checkpoints keep their stored form whatever this is.

use std::fmt;
use std::str::FromStr;

use burn::tensor::FloatDType;

use crate::backend::BackendKind;
use crate::error::ModelError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ComputeDtype {
    /// f32 on a CPU backend; f16 on a GPU (burn's wgpu runs f16 correctly where bf16 is not
    /// reliable: BURN-NOTES, "wgpu on an NVIDIA H200").
    #[default]
    Auto,
    F32,
    F16,
    BF16,
}

impl ComputeDtype {
    /// The float type to run on `backend`; half types where the backend has them.
    pub fn resolve(self, backend: BackendKind) -> Result<FloatDType, ModelError> {
        let dtype = match (self, backend) {
            (ComputeDtype::Auto, BackendKind::Wgpu) => FloatDType::F16,
            (ComputeDtype::Auto | ComputeDtype::F32, _) => FloatDType::F32,
            (ComputeDtype::F16, _) => FloatDType::F16,
            (ComputeDtype::BF16, _) => FloatDType::BF16,
        };
        if backend == BackendKind::Ndarray && dtype != FloatDType::F32 {
            return Err(ModelError::Invalid(format!(
                "--dtype {self}: the ndarray backend computes in f32 only (use --backend flex for f16/bf16)"
            )));
        }
        Ok(dtype)
    }
}

/// `f32`, `f16` or `bf16`, as the command line writes them.
pub fn dtype_name(dtype: FloatDType) -> &'static str {
    match dtype {
        FloatDType::F64 => "f64",
        FloatDType::F32 | FloatDType::Flex32 => "f32",
        FloatDType::F16 => "f16",
        FloatDType::BF16 => "bf16",
    }
}

/// Bytes per value.
pub fn dtype_bytes(dtype: FloatDType) -> u64 {
    match dtype {
        FloatDType::F64 => 8,
        FloatDType::F32 | FloatDType::Flex32 => 4,
        FloatDType::F16 | FloatDType::BF16 => 2,
    }
}

impl FromStr for ComputeDtype {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "f32" | "float32" => Ok(Self::F32),
            "f16" | "float16" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::BF16),
            _ => Err(ModelError::Invalid(format!(
                "unknown dtype `{s}` (expected auto, f32, f16 or bf16)"
            ))),
        }
    }
}

impl fmt::Display for ComputeDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
        })
    }
}
