//! The fused operations on tensors: activations, LayerNorm and linear layers with the activation folded in, one hidden layer.

use candle_core::{Module, Tensor};
use candle_nn::Linear;

use super::activation::*;

use super::cpu::*;
use super::linear_op::*;
use super::norm::*;
use super::pointwise::*;

impl Activation {
    pub(crate) fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Elu => elu(x, 1.0),
            Self::Relu => relu(x),
            Self::Tanh => x.tanh(),
        }
    }
}

/// `alpha · (eˣ − 1)` for `x ≤ 0`, `x` otherwise, with a fused backward
/// (`1` for `x > 0`, `y + alpha` otherwise, from the output `y`). Same values as
/// [`Tensor::elu`] to within a few ulp; NaN stays NaN. A negative `alpha` uses
/// [`Tensor::elu`].
///
/// # Errors
///
/// A tensor error from candle (e.g. a device without a CPU kernel).
pub fn elu(x: &Tensor, alpha: f64) -> candle_core::Result<Tensor> {
    if !is_cpu_f32(x) || alpha < 0.0 {
        return x.elu(alpha);
    }
    x.contiguous()?
        .apply_op1(Activate(Pointwise::Elu(alpha as f32)))
}

/// `max(x, 0)` with a fused backward (`grad` where `x > 0`, else 0, as PyTorch takes
/// it; candle's own ReLU passes the gradient at exactly 0 too). NaN stays NaN.
///
/// # Errors
///
/// A tensor error from candle.
pub fn relu(x: &Tensor) -> candle_core::Result<Tensor> {
    if !is_cpu_f32(x) {
        return x.relu();
    }
    x.contiguous()?.apply_op1(Activate(Pointwise::Relu))
}

/// LayerNorm over the last axis: `(x − mean) / sqrt(var + eps) · gamma + beta`, with
/// the biased variance, as [`candle_nn::ops::layer_norm_slow`] computes it, but in one
/// op with a fused backward for `x`, `gamma` and `beta`.
///
/// # Errors
///
/// `gamma` or `beta` not of shape `[last axis of x]`, or a tensor error from candle.
pub fn layer_norm(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    layer_norm_activation(x, gamma, beta, eps, None)
}

/// [`layer_norm`] followed by `activation`, fused as in [`linear_activation`].
///
/// # Errors
///
/// As [`layer_norm`].
pub fn layer_norm_activation(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    activation: Option<Activation>,
) -> candle_core::Result<Tensor> {
    let width = x.dim(candle_core::D::Minus1)?;
    if gamma.dims() != [width] || beta.dims() != [width] {
        candle_core::bail!(
            "layer_norm: gamma {:?} and beta {:?} must both be [{width}] for input {:?}",
            gamma.dims(),
            beta.dims(),
            x.dims()
        );
    }
    if !(is_cpu_f32(x) && is_cpu_f32(gamma) && is_cpu_f32(beta)) {
        return then_activate(
            candle_nn::ops::layer_norm_slow(x, gamma, beta, eps as f32)?,
            activation,
        );
    }
    let (act, after) = split_activation(activation);
    let y = x.contiguous()?.apply_op3(
        &gamma.contiguous()?,
        &beta.contiguous()?,
        LayerNorm {
            eps: eps as f32,
            act,
        },
    )?;
    then_activate(y, after)
}

/// `x · Wᵀ + b` for a [`Linear`] layer, on inputs of rank ≥ 2 (the leading axes are
/// flattened into one batch axis for the product), as one op with its own backward.
///
/// Against [`Linear::forward`] (a matmul with the transposed weight, then a
/// `broadcast_add`), the op adds the bias in place of the product, sums the bias
/// gradient over the batch in one row-wise pass (candle reduces over the batch axis
/// with a strided loop: about a tenth of a PPO minibatch step), computes the weight
/// gradient directly in the weight's layout, and skips the input gradient when the
/// input needs none (the observations entering the first layer). Layers without a
/// bias, other ranks, dtypes and devices use [`Linear::forward`].
///
/// # Errors
///
/// A tensor error from candle (e.g. an input whose last axis is not the layer's input
/// width).
pub fn linear(x: &Tensor, layer: &Linear) -> candle_core::Result<Tensor> {
    linear_activation(x, layer, None)
}

/// [`linear`] followed by `activation`, in one op when the activation has a fused
/// kernel (ELU with α = 1, ReLU): the activation is applied in place of the product,
/// and the backward goes through it without a separate tensor for the pre-activation
/// and its gradient. tanh is applied after [`linear`] by candle.
///
/// # Errors
///
/// As [`linear`].
pub fn linear_activation(
    x: &Tensor,
    layer: &Linear,
    activation: Option<Activation>,
) -> candle_core::Result<Tensor> {
    let weight = layer.weight();
    let dims = x.dims().to_vec();
    let fused = layer
        .bias()
        .filter(|bias| dims.len() >= 2 && is_cpu_f32(x) && is_cpu_f32(weight) && is_cpu_f32(bias));
    let Some(bias) = fused else {
        return then_activate(layer.forward(x)?, activation);
    };
    let (outputs, inputs) = weight.dims2()?;
    if dims[dims.len() - 1] != inputs || bias.dims() != [outputs] {
        candle_core::bail!(
            "linear: input {dims:?} for a layer of weight [{outputs}, {inputs}] and bias {:?}",
            bias.dims()
        );
    }
    let (act, after) = split_activation(activation);
    let rows = x.elem_count() / inputs.max(1);
    let x2 = x.contiguous()?.reshape((rows, inputs))?;
    let op = LinearOp { act, patches: None };
    let y = x2.apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?;
    let mut out = dims;
    let last = out.len() - 1;
    out[last] = outputs;
    let y = y.reshape(out)?;
    then_activate(y, after)
}

/// A hidden layer: [`linear`], then LayerNorm (ε 1e-5) when `norm` gives its
/// `(gamma, beta)`, then `activation`, the activation fused into the last op.
///
/// # Errors
///
/// As [`linear`] and [`layer_norm`].
pub fn hidden_layer(
    x: &Tensor,
    layer: &Linear,
    norm: Option<(&Tensor, &Tensor)>,
    activation: Option<Activation>,
) -> candle_core::Result<Tensor> {
    match norm {
        Some((gamma, beta)) => {
            let z = linear(x, layer)?;
            layer_norm_activation(&z, gamma, beta, 1e-5, activation)
        }
        None => linear_activation(x, layer, activation),
    }
}

/// `activation` applied to `y` by its own op, or `y` as it is.
pub(super) fn then_activate(
    y: Tensor,
    activation: Option<Activation>,
) -> candle_core::Result<Tensor> {
    match activation {
        Some(a) => a.apply(&y),
        None => Ok(y),
    }
}

/// The part of `activation` that a fused op applies, and the part left to candle.
pub(super) fn split_activation(
    activation: Option<Activation>,
) -> (Option<Pointwise>, Option<Activation>) {
    match activation {
        Some(Activation::Elu) => (Some(Pointwise::Elu(1.0)), None),
        Some(Activation::Relu) => (Some(Pointwise::Relu), None),
        other => (None, other),
    }
}
