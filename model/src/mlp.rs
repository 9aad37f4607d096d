//! SwiGLU feed-forward: down(silu(gate(x)) * up(x)).

use burn::tensor::{Tensor, activation::silu};

use crate::linear::Linear;

pub struct Mlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

impl Mlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let hidden = silu(self.gate.forward(x.clone())) * self.up.forward(x);
        self.down.forward(hidden)
    }
}
