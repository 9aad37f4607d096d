//! SwiGLU feed-forward: down(silu(gate(x)) * up(x)).

use burn::tensor::{Tensor, activation::silu};

use crate::config::ModelConfig;
use crate::error::Result;
use crate::linear::Linear;
use crate::load::weights::Weights;

pub struct Mlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

impl Mlp {
    /// `gate_proj`, `up_proj` and `down_proj` under `w`.
    pub fn load(w: &Weights, config: &ModelConfig) -> Result<Self> {
        let (h, inter) = (config.hidden_size, config.intermediate_size);
        Ok(Self {
            gate: w.linear("gate_proj", inter, h)?,
            up: w.linear("up_proj", inter, h)?,
            down: w.linear("down_proj", h, inter)?,
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let hidden = silu(self.gate.forward(x.clone())) * self.up.forward(x);
        self.down.forward(hidden)
    }
}
