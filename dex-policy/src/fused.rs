//! Fused CPU kernels with their own backward, as candle custom ops: ELU, ReLU,
//! LayerNorm, a linear layer and a convolution, alone or with the activation folded in.
//!
//! candle's autograd still drives everything (each op is a candle `CustomOp` whose
//! backward candle calls); these ops only replace chains of elementwise ops with one
//! pass each way. candle runs ELU's backward as about ten full-size elementwise ops
//! (masks, casts, products); a LayerNorm built from primitive ops (candle's own fused
//! LayerNorm has no backward) as nine forward ops, each with its own backward; and a
//! linear layer's bias gradient as a strided reduction over the batch. Here ELU and
//! ReLU are one pass each way, LayerNorm two, and a linear layer adds its bias and
//! applies its activation in place of the product. Every op falls back to candle's
//! own ops for anything but `f32` tensors on the CPU. [`crate::Mlp`] and the encoders
//! use them; on one thread they took a PPO minibatch step (batch 4,096) from about
//! 230 ms to 130–140 ms and a SAC C51 update from 90 ms to 55 ms.
//!
//! The exponential in ELU is computed by [`exp_nonpositive`], a branch-free
//! range-reduced polynomial that the compiler vectorises, instead of a libm call per
//! element.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use dex_policy::fused;
//!
//! let x = Var::from_tensor(&Tensor::new(&[[-1.0f32, 0.5], [2.0, -3.0]], &Device::Cpu)?)?;
//! let y = fused::elu(x.as_tensor(), 1.0)?;
//! let grads = y.sum_all()?.backward()?;
//! let dx = grads.get(&x).ok_or("no gradient")?.to_vec2::<f32>()?;
//! // d/dx elu(x) is 1 for x > 0 and e^x otherwise.
//! assert!((dx[0][0] - (-1.0f32).exp()).abs() < 1e-6);
//! assert_eq!(dx[1][0], 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Device, Layout, Module, Shape, Tensor,
};
use candle_nn::{Conv2d, Linear};
use serde::{Deserialize, Serialize};

/// Hidden-layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// ELU (α = 1), as rl_games-style PPO uses.
    #[default]
    Elu,
    /// ReLU.
    Relu,
    /// tanh.
    Tanh,
}

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

/// A convolution of a channels-last batch `x: [B, H, W, C]` with a [`Conv2d`] layer
/// (weight `[O, C, k, k]`, bias `[O]`), then `activation`: `[B, OH, OW, O]`, where
/// `OH = (H − k) / stride + 1` and likewise `OW`.
///
/// One op with its own backward: it unfolds every `k × k` patch into a row ("im2col":
/// a `[B·OH·OW, k·k·C]` matrix, each patch row `k` runs of `k·C` contiguous input
/// values) and multiplies it with the weight reordered to `[O, k·k·C]`, adding the
/// bias and applying the activation in place, as [`linear_activation`] does. The
/// backward unfolds again for the weight gradient and computes the input gradient (a
/// fold that adds every patch's gradient back, "col2im") only when the input needs
/// one; the unfolded matrix, `k²` times the image, never enters candle's graph.
/// Channels-last keeps the output of one layer the input of the next without
/// transposes. candle 0.11's own CPU convolution and its backward (direct loops and a
/// transposed convolution) took most of a SAC update on 16 × 16 depth images.
///
/// Layers with padding, dilation, groups or no bias, and tensors other than CPU `f32`,
/// go through [`Conv2d::forward`] (transposed to channels-first and back).
///
/// # Errors
///
/// An input of rank other than 4, channels that do not match the weight, an image
/// smaller than the kernel or a stride that leaves pixels over, or a tensor error from
/// candle.
pub fn conv2d_nhwc(
    x: &Tensor,
    conv: &Conv2d,
    activation: Option<Activation>,
) -> candle_core::Result<Tensor> {
    let weight = conv.weight();
    let (outputs, channels, k, k2) = weight.dims4()?;
    let (b, h, w, c) = x.dims4()?;
    if c != channels || k != k2 {
        candle_core::bail!(
            "conv2d: input {:?} (channels last) for a weight {:?}",
            x.dims(),
            weight.dims()
        );
    }
    let cfg = conv.config();
    if cfg.stride == 0 {
        candle_core::bail!("conv2d: stride 0");
    }
    let simple = cfg.padding == 0 && cfg.dilation == 1 && cfg.groups == 1;
    let bias = conv
        .bias()
        .filter(|bias| simple && is_cpu_f32(x) && is_cpu_f32(weight) && is_cpu_f32(bias));
    let Some(bias) = bias else {
        let y = conv.forward(&x.permute((0, 3, 1, 2))?)?;
        return then_activate(y.permute((0, 2, 3, 1))?, activation);
    };
    let s = cfg.stride;
    if h < k || w < k || !(h - k).is_multiple_of(s) || !(w - k).is_multiple_of(s) {
        candle_core::bail!(
            "conv2d: a {h}×{w} image with kernel {k} and stride {s} (needs size ≥ kernel \
             and (size − kernel) divisible by the stride)"
        );
    }
    let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
    // The weight as rows of (ky, kx, c), the order of the unfolded patches.
    let w2 = weight
        .permute((0, 2, 3, 1))?
        .contiguous()?
        .reshape((outputs, k * k * c))?;
    let (act, after) = split_activation(activation);
    let unfold = Unfold {
        kernel: k,
        stride: s,
    };
    let y = x.contiguous()?.apply_op3(
        &w2,
        &bias.contiguous()?,
        LinearOp {
            act,
            patches: Some(unfold),
        },
    )?;
    then_activate(y.reshape((b, oh, ow, outputs))?, after)
}

/// Patches of a contiguous `[B, H, W, C]` image as rows `[B·OH·OW, k·k·C]`, each row
/// ordered (ky, kx, c).
#[derive(Debug, Clone, Copy)]
struct Unfold {
    kernel: usize,
    stride: usize,
}

impl Unfold {
    /// `(b, h, w, c, oh, ow)` of an input layout.
    fn sizes(&self, layout: &Layout) -> candle_core::Result<[usize; 6]> {
        let (b, h, w, c) = layout.shape().dims4()?;
        let (k, s) = (self.kernel, self.stride);
        if k == 0 || s == 0 || h < k || w < k {
            candle_core::bail!(
                "dex-unfold: image {:?}, kernel {k}, stride {s}",
                layout.dims()
            );
        }
        Ok([b, h, w, c, (h - k) / s + 1, (w - k) / s + 1])
    }
}

impl CustomOp1 for Unfold {
    fn name(&self) -> &'static str {
        "dex-unfold"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        let [b, h, w, c, oh, ow] = self.sizes(layout)?;
        let (k, s) = (self.kernel, self.stride);
        let run = k * c;
        let patches = b * oh * ow;
        // Filled by appending, not zeroed first: the matrix is large (k² times the image).
        let mut cols = Vec::with_capacity(patches * k * run);
        for r in 0..patches {
            let top_left = patch_origin(r, [h, w, c, oh, ow], s);
            for ky in 0..k {
                let start = top_left + ky * w * c;
                cols.extend_from_slice(&x[start..start + run]);
            }
        }
        Ok((CpuStorage::F32(cols), Shape::from((patches, k * run))))
    }
}

/// Offset in a contiguous `[B, H, W, C]` image of the top-left value of patch `r`
/// (patches numbered batch, row, column) for `[h, w, c, oh, ow]` and stride `s`.
#[inline]
fn patch_origin(r: usize, [h, w, c, oh, ow]: [usize; 5], s: usize) -> usize {
    let (bi, oy, ox) = (r / (oh * ow), (r / ow) % oh, r % ow);
    ((bi * h + oy * s) * w + ox * s) * c
}

/// [`Unfold`]'s adjoint: patch rows `[B·OH·OW, k·k·C]` added back into a
/// `[B, H, W, C]` image.
struct Fold {
    unfold: Unfold,
    image: Shape,
}

impl CustomOp1 for Fold {
    fn name(&self) -> &'static str {
        "dex-fold"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let cols = f32_slice(self.name(), storage, layout)?;
        let image_layout = Layout::contiguous(self.image.clone());
        let [b, h, w, c, oh, ow] = self.unfold.sizes(&image_layout)?;
        let (k, s) = (self.unfold.kernel, self.unfold.stride);
        let run = k * c;
        if cols.len() != b * oh * ow * k * run {
            candle_core::bail!(
                "{}: {:?} patch gradients for an image {:?}",
                self.name(),
                layout.dims(),
                self.image.dims()
            );
        }
        let mut x = vec![0.0f32; b * h * w * c];
        for (r, row) in cols.chunks_exact(k * run).enumerate() {
            let top_left = patch_origin(r, [h, w, c, oh, ow], s);
            for (ky, src) in row.chunks_exact(run).enumerate() {
                let start = top_left + ky * w * c;
                for (d, &g) in x[start..start + run].iter_mut().zip(src) {
                    *d += g;
                }
            }
        }
        Ok((CpuStorage::F32(x), self.image.clone()))
    }
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
fn then_activate(y: Tensor, activation: Option<Activation>) -> candle_core::Result<Tensor> {
    match activation {
        Some(a) => a.apply(&y),
        None => Ok(y),
    }
}

/// The part of `activation` that a fused op applies, and the part left to candle.
fn split_activation(activation: Option<Activation>) -> (Option<Pointwise>, Option<Activation>) {
    match activation {
        Some(Activation::Elu) => (Some(Pointwise::Elu(1.0)), None),
        Some(Activation::Relu) => (Some(Pointwise::Relu), None),
        other => (None, other),
    }
}

fn is_cpu_f32(x: &Tensor) -> bool {
    x.dtype() == DType::F32 && matches!(x.device(), Device::Cpu)
}

/// The contiguous `f32` data of `storage` under `layout`, or an error naming `op`.
fn f32_slice<'a>(
    op: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: only f32 is supported");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: the input must be contiguous"),
    }
}

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two (Cody and Waite's range reduction): a high part with few
/// significant bits, so `n · LN2_HI` is exact for the `n` that occur, and the rest.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 · 2²³: adding it rounds an `f32` of magnitude below 2²² to an integer, which then
/// sits in the low bits of the sum's mantissa.
const ROUNDER: f32 = 12_582_912.0;

/// `eˣ` for `x ≤ 0`, branch-free (the compiler vectorises loops over it): `x` is
/// clamped to `[−87, 0]` (below −87 the result is under 2⁻¹²⁵, and ELU reads it as 0
/// to within 1e-38), split as `x = n ln 2 + r` with `|r| ≤ ln 2 / 2`, and
/// `eʳ` summed as its Taylor series to `r⁷ / 7!` (truncation error below 1e-8
/// relative), then scaled by `2ⁿ` through the exponent bits. Relative error within
/// about 2e-7 of the true value (a test checks it against `f32::exp`).
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    // `if` rather than `min`/`max`: they compile to the same selects, and NaN becomes 0
    // here where `min` would keep it (callers handle NaN themselves).
    let x = if x < 0.0 { x } else { 0.0 };
    let x = if x > -87.0 { x } else { -87.0 };
    let t = x * LOG2_E + ROUNDER;
    let n = t - ROUNDER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // `t`'s mantissa holds 0x40_0000 + n; n ∈ [−126, 0], so n + 127 is a valid
    // biased exponent.
    let n_int = t.to_bits() as i32 - ROUNDER.to_bits() as i32;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    p * scale
}

/// The pointwise activations with a fused kernel.
#[derive(Clone, Copy)]
enum Pointwise {
    /// ELU with this `alpha` (≥ 0).
    Elu(f32),
    Relu,
}

/// ELU of `x`. NaN fails `x <= 0` and is passed through.
#[inline(always)]
fn elu_value(alpha: f32, x: f32) -> f32 {
    let neg = alpha * (exp_nonpositive(x) - 1.0);
    if x <= 0.0 { neg } else { x }
}

/// ReLU of `x`, NaN passed through.
#[inline(always)]
fn relu_value(x: f32) -> f32 {
    if x <= 0.0 { 0.0 } else { x }
}

/// `grad · elu'(x)` from the output `y`: `y > 0` exactly when `x > 0` (`alpha ≥ 0`).
#[inline(always)]
fn elu_grad(alpha: f32, g: f32, y: f32) -> f32 {
    if y > 0.0 { g } else { g * (y + alpha) }
}

/// `grad · relu'(x)` from the output `y`, with the left derivative 0 at `x = 0`.
#[inline(always)]
fn relu_grad(g: f32, y: f32) -> f32 {
    if y > 0.0 { g } else { 0.0 }
}

impl Pointwise {
    /// Applies the activation to every value in place.
    fn apply_in_place(self, values: &mut [f32]) {
        // A `match` outside the loop, so that each loop is branch-free and vectorised.
        match self {
            Self::Elu(alpha) => values.iter_mut().for_each(|v| *v = elu_value(alpha, *v)),
            Self::Relu => values.iter_mut().for_each(|v| *v = relu_value(*v)),
        }
    }
}

/// The gradient with respect to the pre-activation: `grad · f'(x)` from the output `y`
/// of an op that applied `act` last, or `grad` itself without an activation.
fn through_activation(
    act: Option<Pointwise>,
    grad: Tensor,
    y: &Tensor,
) -> candle_core::Result<Tensor> {
    match act {
        Some(a) => grad.apply_op2_no_bwd(&y.detach(), &ActivationGrad(a)),
        None => Ok(grad),
    }
}

struct Activate(Pointwise);

impl CustomOp1 for Activate {
    fn name(&self) -> &'static str {
        "dex-activation"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        // A `match` outside the loop, so that each loop is branch-free and vectorised.
        let y: Vec<f32> = match self.0 {
            Pointwise::Elu(alpha) => x.iter().map(|&v| elu_value(alpha, v)).collect(),
            Pointwise::Relu => x.iter().map(|&v| relu_value(v)).collect(),
        };
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?;
        Ok(Some(grad.apply_op2_no_bwd(res, &ActivationGrad(self.0))?))
    }
}

/// `grad · f'(x)` from the activation's output `y = f(x)`.
struct ActivationGrad(Pointwise);

impl CustomOp2 for ActivationGrad {
    fn name(&self) -> &'static str {
        "dex-activation-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let grad = f32_slice(self.name(), s1, l1)?;
        let y = f32_slice(self.name(), s2, l2)?;
        if grad.len() != y.len() {
            candle_core::bail!(
                "{}: {} gradients for {} outputs",
                self.name(),
                grad.len(),
                y.len()
            );
        }
        let dx: Vec<f32> = match self.0 {
            Pointwise::Elu(alpha) => grad
                .iter()
                .zip(y)
                .map(|(&g, &y)| elu_grad(alpha, g, y))
                .collect(),
            Pointwise::Relu => grad.iter().zip(y).map(|(&g, &y)| relu_grad(g, y)).collect(),
        };
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// `act(x · wᵀ + b)` for contiguous `x: [rows, in]`, `w: [out, in]`, `b: [out]`; with
/// `patches`, `x` is a contiguous `[B, H, W, C]` image whose unfolded patches take the
/// place of the rows. The patches live only inside the op (the backward unfolds
/// again), so that candle's autograd never holds them or their gradient, `k²` times
/// the size of the image.
struct LinearOp {
    act: Option<Pointwise>,
    patches: Option<Unfold>,
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        if self.patches.is_some() {
            "dex-conv2d"
        } else {
            "dex-linear"
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some(unfold) = &self.patches else {
            return affine_forward(self.name(), self.act, (s1, l1), (s2, l2), (s3, l3));
        };
        let (cols, shape) = unfold.cpu_fwd(s1, l1)?;
        let cols_layout = Layout::contiguous(shape);
        affine_forward(
            self.name(),
            self.act,
            (&cols, &cols_layout),
            (s2, l2),
            (s3, l3),
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = through_activation(self.act, grad_res.detach().contiguous()?, res)?;
        let dx = if x.track_op() {
            let d_rows = grad.matmul(&w.detach())?;
            Some(match self.patches {
                Some(unfold) => d_rows.apply_op1_no_bwd(&Fold {
                    unfold,
                    image: x.shape().clone(),
                })?,
                None => d_rows,
            })
        } else {
            None
        };
        let rows = match &self.patches {
            Some(unfold) => x.detach().apply_op1_no_bwd(unfold)?,
            None => x.detach(),
        };
        let dw = grad.t()?.matmul(&rows)?;
        let db = grad.apply_op1_no_bwd(&ColumnSum {
            width: b.elem_count(),
        })?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// `act(x · wᵀ + b)` on CPU storage: `x: [rows, in]`, `w: [out, in]`, `b: [out]`, all
/// contiguous; returns `[rows, out]`.
fn affine_forward(
    op: &str,
    act: Option<Pointwise>,
    (xs, xl): (&CpuStorage, &Layout),
    (ws, wl): (&CpuStorage, &Layout),
    (bs, bl): (&CpuStorage, &Layout),
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (rows, inputs) = xl.shape().dims2()?;
    let (outputs, w_inputs) = wl.shape().dims2()?;
    let bias = f32_slice(op, bs, bl)?;
    if w_inputs != inputs || bias.len() != outputs {
        candle_core::bail!(
            "{op}: input {:?}, weight {:?}, bias {:?}",
            xl.dims(),
            wl.dims(),
            bl.dims()
        );
    }
    // candle's own CPU matmul (the `gemm` crate) on the transposed view of `w`.
    let mut y = xs.matmul(ws, (1, rows, outputs, inputs), xl, &wl.transpose(0, 1)?)?;
    let CpuStorage::F32(values) = &mut y else {
        candle_core::bail!("{op}: only f32 is supported");
    };
    for row in values.chunks_exact_mut(outputs) {
        for (o, &b) in row.iter_mut().zip(bias) {
            *o += b;
        }
    }
    if let Some(act) = act {
        act.apply_in_place(values);
    }
    Ok((y, Shape::from((rows, outputs))))
}

/// Sum over rows of a contiguous `[rows, width]` tensor, row by row.
struct ColumnSum {
    width: usize,
}

impl CustomOp1 for ColumnSum {
    fn name(&self) -> &'static str {
        "dex-column-sum"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        let width = self.width;
        if width == 0 || x.len() % width != 0 {
            candle_core::bail!(
                "{}: input {:?} in rows of {width}",
                self.name(),
                layout.dims()
            );
        }
        let mut sum = vec![0.0f32; width];
        for row in x.chunks_exact(width) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v;
            }
        }
        Ok((CpuStorage::F32(sum), Shape::from(width)))
    }
}

/// `act(LayerNorm(x))` over the last axis.
struct LayerNorm {
    eps: f32,
    act: Option<Pointwise>,
}

/// `Σ f(aᵢ, bᵢ)` in eight interleaved partial sums, so the compiler can vectorise it
/// (one running sum is a chain of dependent additions).
#[inline]
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f(x, y))
        .sum();
    for (xa, xb) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += f(xa[k], xb[k]);
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// Mean and `1 / sqrt(var + eps)` of one row (two passes, biased variance).
#[inline]
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let d = row.len() as f32;
    let mean = lane_sum(row, row, |v, _| v) / d;
    let var = lane_sum(row, row, |v, _| (v - mean) * (v - mean)) / d;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "dex-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), s1, l1)?;
        let gamma = f32_slice(self.name(), s2, l2)?;
        let beta = f32_slice(self.name(), s3, l3)?;
        let width = gamma.len();
        if width == 0 || beta.len() != width || x.len() % width != 0 {
            candle_core::bail!(
                "{}: input {:?} with {width} scales and {} shifts",
                self.name(),
                l1.dims(),
                beta.len()
            );
        }
        let mut y = vec![0.0f32; x.len()];
        for (xr, yr) in x.chunks_exact(width).zip(y.chunks_exact_mut(width)) {
            let (mean, rstd) = row_stats(xr, self.eps);
            for (((o, &v), &g), &b) in yr.iter_mut().zip(xr).zip(gamma).zip(beta) {
                *o = (v - mean) * rstd * g + b;
            }
        }
        if let Some(act) = self.act {
            act.apply_in_place(&mut y);
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let width = gamma.dim(0)?;
        let rows = x.elem_count() / width;
        let grad = through_activation(self.act, grad_res.detach().contiguous()?, res)?;
        // One op computes all three: rows 0..rows are dx, then dgamma, then dbeta.
        let all = x.apply_op3_no_bwd(gamma, &grad, &LayerNormGrad { eps: self.eps })?;
        let dx = all.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dgamma = all.narrow(0, rows, 1)?.reshape(width)?;
        let dbeta = all.narrow(0, rows + 1, 1)?.reshape(width)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// LayerNorm's backward on `(x, gamma, grad)`: a `[rows + 2, width]` tensor holding
/// `dx` row by row, then `dgamma` and `dbeta`.
struct LayerNormGrad {
    eps: f32,
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "dex-layer-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), s1, l1)?;
        let gamma = f32_slice(self.name(), s2, l2)?;
        let grad = f32_slice(self.name(), s3, l3)?;
        let width = gamma.len();
        if width == 0 || grad.len() != x.len() || x.len() % width != 0 {
            candle_core::bail!(
                "{}: input {:?}, gradient {:?}, {width} scales",
                self.name(),
                l1.dims(),
                l3.dims()
            );
        }
        let rows = x.len() / width;
        let mut out = vec![0.0f32; (rows + 2) * width];
        let (dx, params) = out.split_at_mut(rows * width);
        let (dgamma, dbeta) = params.split_at_mut(width);
        let d = width as f32;
        let mut xhat = vec![0.0f32; width];
        let mut dxhat = vec![0.0f32; width];
        for ((xr, gr), dxr) in x
            .chunks_exact(width)
            .zip(grad.chunks_exact(width))
            .zip(dx.chunks_exact_mut(width))
        {
            let (mean, rstd) = row_stats(xr, self.eps);
            for ((xh, dxh), (&v, (&g, &s))) in xhat
                .iter_mut()
                .zip(dxhat.iter_mut())
                .zip(xr.iter().zip(gr.iter().zip(gamma)))
            {
                *xh = (v - mean) * rstd;
                *dxh = g * s;
            }
            for (((dg, db), &g), &xh) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(gr).zip(&xhat)
            {
                *dg += g * xh;
                *db += g;
            }
            let sum_dxhat = lane_sum(&dxhat, &dxhat, |a, _| a);
            let sum_dxhat_xhat = lane_sum(&dxhat, &xhat, |a, b| a * b);
            let m1 = sum_dxhat / d;
            let m2 = sum_dxhat_xhat / d;
            for ((o, &dxh), &xh) in dxr.iter_mut().zip(&dxhat).zip(&xhat) {
                *o = rstd * (dxh - m1 - xh * m2);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows + 2, width))))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use candle_core::Var;
    use rand::{Rng, SeedableRng};

    fn random(shape: &[usize], scale: f32, seed: u64) -> Tensor {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn exp_matches_the_standard_library_over_its_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let got = f64::from(exp_nonpositive(x));
            let want = f64::from(x).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 1e-3;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-200.0) < 1e-37);
        assert!(exp_nonpositive(f32::NEG_INFINITY) < 1e-37);
        // Positive inputs are clamped to 0 (ELU never asks for them).
        assert_eq!(exp_nonpositive(3.0), 1.0);
    }

    #[test]
    fn elu_matches_candle_and_keeps_nan() {
        let x = Tensor::new(
            &[
                -100.0f32,
                -20.0,
                -3.0,
                -1.0,
                -1e-3,
                -1e-7,
                0.0,
                1e-7,
                0.5,
                2.0,
                f32::NEG_INFINITY,
                f32::INFINITY,
            ],
            &Device::Cpu,
        )
        .unwrap();
        for alpha in [1.0, 0.5] {
            let ours = elu(&x, alpha).unwrap().to_vec1::<f32>().unwrap();
            let theirs = x.elu(alpha).unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in ours.iter().zip(&theirs) {
                assert!(
                    a == b || (a - b).abs() <= 3e-7 * b.abs().max(1e-3),
                    "{a} vs {b}"
                );
            }
        }
        let nan = Tensor::new(&[f32::NAN, -1.0], &Device::Cpu).unwrap();
        let y = elu(&nan, 1.0).unwrap().to_vec1::<f32>().unwrap();
        assert!(y[0].is_nan());
        let x = Var::from_tensor(&nan).unwrap();
        let g = elu(x.as_tensor(), 1.0)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(g.get(&x).unwrap().to_vec1::<f32>().unwrap()[0].is_nan());
    }

    #[test]
    fn relu_matches_candle_away_from_zero() {
        let x0 = random(&[6, 21], 2.0, 18);
        let w = random(&[6, 21], 1.0, 19);
        let x = Var::from_tensor(&x0).unwrap();
        let run = |f: &dyn Fn(&Tensor) -> Tensor| {
            let y = f(x.as_tensor());
            let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
            (y, g.get(&x).unwrap().clone())
        };
        let (y1, g1) = run(&|x| relu(x).unwrap());
        let (y2, g2) = run(&|x| x.relu().unwrap());
        assert_eq!(max_abs_diff(&y1, &y2), 0.0);
        assert_eq!(max_abs_diff(&g1, &g2), 0.0);
        let y = relu(&Tensor::new(&[f32::NAN, -1.0, 0.0, 2.0], &Device::Cpu).unwrap())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(y[0].is_nan());
        assert_eq!(&y[1..], &[0.0, 0.0, 2.0]);
    }

    #[test]
    fn elu_backward_matches_candle_and_finite_differences() {
        let x0 = random(&[7, 33], 3.0, 1);
        let w = random(&[7, 33], 1.0, 2);
        let loss =
            |f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor| (f(x) * &w).unwrap().sum_all().unwrap();
        let ours = |x: &Tensor| elu(x, 1.0).unwrap();
        let theirs = |x: &Tensor| x.elu(1.0).unwrap();
        let x = Var::from_tensor(&x0).unwrap();
        let g_ours = loss(&ours, x.as_tensor())
            .backward()
            .unwrap()
            .get(&x)
            .unwrap()
            .clone();
        let g_theirs = loss(&theirs, x.as_tensor())
            .backward()
            .unwrap()
            .get(&x)
            .unwrap()
            .clone();
        assert!(max_abs_diff(&g_ours, &g_theirs) < 1e-6);
        // Central differences in f64 on a few elements.
        let xs = x0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let ws = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let gs = g_ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let f = |v: f64| if v > 0.0 { v } else { v.exp() - 1.0 };
        // Only element i's term of the loss changes with element i.
        let term = |i: usize, d: f64| f64::from(ws[i]) * f(f64::from(xs[i]) + d);
        assert_central_differences(&gs, &[0, 5, 40, 100, 230], 1e-4, 1e-4, term);
    }

    /// Asserts that `grad[i]` matches the central difference `(loss(i, h) −
    /// loss(i, −h)) / 2h` within `tol` at every index of `at`, where `loss(i, d)` is
    /// the loss with input element `i` moved by `d`.
    fn assert_central_differences(
        grad: &[f32],
        at: &[usize],
        h: f64,
        tol: f64,
        loss: impl Fn(usize, f64) -> f64,
    ) {
        for &i in at {
            let fd = (loss(i, h) - loss(i, -h)) / (2.0 * h);
            let g = f64::from(grad[i]);
            assert!((fd - g).abs() < tol, "element {i}: {fd} vs {g}");
        }
    }

    #[test]
    fn layer_norm_matches_the_primitive_op_version_forward_and_backward() {
        for shape in [vec![5, 16], vec![2, 3, 24]] {
            let width = *shape.last().unwrap();
            let x0 = (random(&shape, 2.0, 3) + 0.7).unwrap();
            let w = random(&shape, 1.0, 4);
            let gamma = Var::from_tensor(&(random(&[width], 0.5, 5) + 1.0).unwrap()).unwrap();
            let beta = Var::from_tensor(&random(&[width], 0.5, 6)).unwrap();
            let x = Var::from_tensor(&x0).unwrap();
            let run = |fused: bool| {
                let y = if fused {
                    layer_norm(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-5).unwrap()
                } else {
                    candle_nn::ops::layer_norm_slow(
                        x.as_tensor(),
                        gamma.as_tensor(),
                        beta.as_tensor(),
                        1e-5,
                    )
                    .unwrap()
                };
                let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
                let g = |v: &Var| grads.get(v).unwrap().clone();
                (y, g(&x), g(&gamma), g(&beta))
            };
            let (y1, dx1, dg1, db1) = run(true);
            let (y2, dx2, dg2, db2) = run(false);
            assert!(max_abs_diff(&y1, &y2) < 1e-5);
            assert!(max_abs_diff(&dx1, &dx2) < 1e-5);
            assert!(max_abs_diff(&dg1, &dg2) < 1e-5);
            assert!(max_abs_diff(&db1, &db2) < 1e-5);
        }
    }

    #[test]
    fn layer_norm_gradient_matches_finite_differences() {
        let x0 = random(&[3, 8], 1.5, 7);
        let w = random(&[3, 8], 1.0, 8);
        let gamma = (random(&[8], 0.5, 9) + 1.0).unwrap();
        let beta = random(&[8], 0.5, 10);
        let x = Var::from_tensor(&x0).unwrap();
        let loss = |x: &Tensor| {
            (layer_norm(x, &gamma, &beta, 1e-5).unwrap() * &w)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let g = loss(x.as_tensor())
            .backward()
            .unwrap()
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let xs = x0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for i in [0, 3, 9, 17, 23] {
            let h = 1e-2f32;
            let eval = |d: f32| {
                let mut v = xs.clone();
                v[i] += d;
                let t = Tensor::from_vec(v, (3, 8), &Device::Cpu).unwrap();
                loss(&t).to_scalar::<f32>().unwrap()
            };
            let fd = (eval(h) - eval(-h)) / (2.0 * h);
            assert!((fd - g[i]).abs() < 2e-3, "element {i}: {fd} vs {}", g[i]);
        }
    }

    #[test]
    fn layer_norm_takes_non_contiguous_input_and_refuses_wrong_widths() {
        let x = random(&[16, 4], 1.0, 11).t().unwrap(); // 4 × 16, not contiguous
        let gamma = Tensor::ones(16, DType::F32, &Device::Cpu).unwrap();
        let beta = Tensor::zeros(16, DType::F32, &Device::Cpu).unwrap();
        let ours = layer_norm(&x, &gamma, &beta, 1e-5).unwrap();
        let theirs = candle_nn::ops::layer_norm_slow(&x, &gamma, &beta, 1e-5).unwrap();
        assert!(max_abs_diff(&ours, &theirs) < 1e-5);
        let short = Tensor::ones(15, DType::F32, &Device::Cpu).unwrap();
        let err = layer_norm(&x, &short, &beta, 1e-5).unwrap_err().to_string();
        assert!(err.contains("must both be [16]"), "{err}");
    }

    #[test]
    fn linear_matches_candle_forward_and_backward_for_every_rank() {
        let (varmap, vb) = crate::vars::new_store();
        let layer = candle_nn::linear(12, 5, vb.pp("l")).unwrap();
        crate::vars::init_seeded(&varmap, 3, |_| 1.0).unwrap();
        // A non-zero bias, so that its gradient is not trivially compared.
        let bias = varmap.data().lock().unwrap()["l.bias"].clone();
        bias.set(&random(&[5], 1.0, 13)).unwrap();
        for shape in [vec![9, 12], vec![2, 4, 12], vec![2, 3, 2, 12]] {
            let x0 = random(&shape, 1.0, 14);
            let mut w_shape = shape.clone();
            *w_shape.last_mut().unwrap() = 5;
            let w = random(&w_shape, 1.0, 15);
            let x = Var::from_tensor(&x0).unwrap();
            let run = |fused: bool| {
                let y = if fused {
                    linear(x.as_tensor(), &layer).unwrap()
                } else {
                    layer.forward(x.as_tensor()).unwrap()
                };
                let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
                let vars = varmap.all_vars();
                let mut g: Vec<Tensor> =
                    vars.iter().map(|v| grads.get(v).unwrap().clone()).collect();
                g.push(grads.get(&x).unwrap().clone());
                (y, g)
            };
            let (y1, g1) = run(true);
            let (y2, g2) = run(false);
            assert_eq!(y1.dims(), y2.dims());
            assert!(max_abs_diff(&y1, &y2) < 1e-5, "{shape:?}");
            for (a, b) in g1.iter().zip(&g2) {
                assert!(max_abs_diff(a, b) < 1e-4, "{shape:?}");
            }
        }
        // An input that needs no gradient (the first layer's observations): the
        // parameters' gradients are the same.
        let x0 = random(&[9, 12], 1.0, 17);
        let w = random(&[9, 5], 1.0, 18);
        let grads = |y: Tensor| {
            let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
            varmap
                .all_vars()
                .iter()
                .map(|v| g.get(v).unwrap().clone())
                .collect::<Vec<_>>()
        };
        let g1 = grads(linear(&x0, &layer).unwrap());
        let g2 = grads(layer.forward(&x0).unwrap());
        for (a, b) in g1.iter().zip(&g2) {
            assert!(max_abs_diff(a, b) < 1e-4);
        }
        let wrong = random(&[3, 7], 1.0, 16);
        let err = linear(&wrong, &layer).unwrap_err().to_string();
        assert!(err.contains("weight [5, 12]"), "{err}");
    }

    #[test]
    fn fused_activations_match_the_separate_ops_forward_and_backward() {
        let (varmap, vb) = crate::vars::new_store();
        let layer = candle_nn::linear(10, 14, vb.pp("l")).unwrap();
        let gamma = vb
            .get_with_hints(14, "g", candle_nn::Init::Const(1.0))
            .unwrap();
        let beta = vb
            .get_with_hints(14, "b", candle_nn::Init::Const(0.0))
            .unwrap();
        crate::vars::init_seeded(&varmap, 5, |_| 1.0).unwrap();
        varmap.data().lock().unwrap()["b"]
            .set(&random(&[14], 0.5, 20))
            .unwrap();
        let x0 = random(&[2, 6, 10], 2.0, 21);
        let w = random(&[2, 6, 14], 1.0, 22);
        let x = Var::from_tensor(&x0).unwrap();
        for act in [Activation::Elu, Activation::Relu, Activation::Tanh] {
            for norm in [false, true] {
                let run = |fused: bool| {
                    let y = match (fused, norm) {
                        (true, false) => hidden_layer(x.as_tensor(), &layer, None, Some(act)),
                        (true, true) => {
                            let norm = Some((&gamma, &beta));
                            hidden_layer(x.as_tensor(), &layer, norm, Some(act))
                        }
                        (false, false) => act.apply(&layer.forward(x.as_tensor()).unwrap()),
                        (false, true) => {
                            let z = layer.forward(x.as_tensor()).unwrap();
                            let n = candle_nn::ops::layer_norm_slow(&z, &gamma, &beta, 1e-5);
                            act.apply(&n.unwrap())
                        }
                    }
                    .unwrap();
                    let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
                    // Name order; gamma and beta have no gradient without the norm.
                    let data = varmap.data().lock().unwrap();
                    let mut names: Vec<&String> = data.keys().collect();
                    names.sort();
                    let mut all: Vec<Option<Tensor>> =
                        names.iter().map(|n| g.get(&data[*n]).cloned()).collect();
                    all.push(g.get(&x).cloned());
                    (y, all)
                };
                let (y1, g1) = run(true);
                let (y2, g2) = run(false);
                assert!(max_abs_diff(&y1, &y2) < 1e-5, "{act:?} norm {norm}");
                for (a, b) in g1.iter().zip(&g2) {
                    match (a, b) {
                        (Some(a), Some(b)) => {
                            assert!(max_abs_diff(a, b) < 1e-4, "{act:?} norm {norm}")
                        }
                        (None, None) => {}
                        _ => panic!("a gradient on one side only ({act:?}, norm {norm})"),
                    }
                }
            }
        }
    }

    #[test]
    fn other_dtypes_fall_back_to_candle() {
        let x = random(&[4, 8], 2.0, 12).to_dtype(DType::F64).unwrap();
        let a = elu(&x, 1.0).unwrap();
        let b = x.elu(1.0).unwrap();
        assert_eq!(a.to_vec2::<f64>().unwrap(), b.to_vec2::<f64>().unwrap());
    }

    /// A conv layer with random weights: `[out, in, k, k]`, stride `s`.
    fn conv_layer(out: usize, inp: usize, k: usize, s: usize, seed: u64) -> (Var, Var, Conv2d) {
        let w = Var::from_tensor(&random(&[out, inp, k, k], 0.5, seed)).unwrap();
        let b = Var::from_tensor(&random(&[out], 0.5, seed + 1)).unwrap();
        let cfg = candle_nn::Conv2dConfig {
            stride: s,
            ..Default::default()
        };
        let conv = Conv2d::new(w.as_tensor().clone(), Some(b.as_tensor().clone()), cfg);
        (w, b, conv)
    }

    #[test]
    fn conv_matches_candle_values_and_gradients() {
        // (batch, channels, size, outputs, kernel, stride, activation)
        let cases = [
            (3, 1, 16, 8, 4, 2, Some(Activation::Relu)),
            (2, 3, 7, 5, 3, 1, Some(Activation::Elu)),
            (2, 4, 9, 6, 3, 2, None),
            (1, 2, 5, 3, 5, 1, Some(Activation::Tanh)),
        ];
        for (i, &(b, c, n, o, k, s, act)) in cases.iter().enumerate() {
            let seed = 100 + 10 * i as u64;
            let (w, bias, conv) = conv_layer(o, c, k, s, seed);
            let x = Var::from_tensor(&random(&[b, c, n, n], 1.0, seed + 2)).unwrap();
            let m = (n - k) / s + 1;
            let probe = random(&[b, o, m, m], 1.0, seed + 3);
            let run = |f: &dyn Fn(&Tensor) -> Tensor| {
                let y = f(x.as_tensor());
                let g = (&y * &probe)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let get = |v: &Var| g.get(v).unwrap().clone();
                (y, get(&x), get(&w), get(&bias))
            };
            let ours = run(&|x| {
                let nhwc = x.permute((0, 2, 3, 1)).unwrap();
                conv2d_nhwc(&nhwc, &conv, act)
                    .unwrap()
                    .permute((0, 3, 1, 2))
                    .unwrap()
            });
            let theirs = run(&|x| then_activate(conv.forward(x).unwrap(), act).unwrap());
            for (what, a, t) in [
                ("output", &ours.0, &theirs.0),
                ("dx", &ours.1, &theirs.1),
                ("dw", &ours.2, &theirs.2),
                ("db", &ours.3, &theirs.3),
            ] {
                assert_eq!(a.dims(), t.dims(), "case {i} {what}");
                let d = max_abs_diff(a, t);
                assert!(d < 2e-4, "case {i} {what}: differs by {d}");
            }
        }
    }

    #[test]
    fn conv_input_gradient_matches_finite_differences() {
        let (_, _, conv) = conv_layer(2, 2, 3, 2, 7);
        let x0 = random(&[1, 7, 7, 2], 1.0, 9);
        let probe = random(&[1, 3, 3, 2], 1.0, 10);
        let loss = |x: &Tensor| {
            let y = conv2d_nhwc(x, &conv, Some(Activation::Elu)).unwrap();
            (y * &probe).unwrap().sum_all().unwrap()
        };
        let x = Var::from_tensor(&x0).unwrap();
        let g = loss(x.as_tensor()).backward().unwrap();
        let g = g
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let x64 = x0.to_dtype(DType::F64).unwrap();
        let xs = x64.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        // The same convolution in f64 (which `conv2d_nhwc` leaves to candle's own
        // convolution), for central differences.
        let conv64 = Conv2d::new(
            conv.weight().to_dtype(DType::F64).unwrap(),
            conv.bias().map(|b| b.to_dtype(DType::F64).unwrap()),
            *conv.config(),
        );
        let probe64 = probe.to_dtype(DType::F64).unwrap();
        let moved = |i: usize, d: f64| -> f64 {
            let mut v = xs.clone();
            v[i] += d;
            let x = Tensor::from_vec(v, (1, 7, 7, 2), &Device::Cpu).unwrap();
            let y = conv2d_nhwc(&x, &conv64, Some(Activation::Elu)).unwrap();
            (y * &probe64)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        // Corner, edge and inner pixels: in one patch, in two (stride 2, kernel 3), in four.
        let at = [0, 1, 13, 14, 48, 60, 97];
        assert_central_differences(&g, &at, 1e-5, 1e-3, moved);
    }

    #[test]
    fn conv_rejects_wrong_channels_and_leftover_pixels() {
        let (_, _, conv) = conv_layer(2, 3, 3, 2, 1);
        let wrong_channels = random(&[1, 7, 7, 2], 1.0, 2);
        assert!(conv2d_nhwc(&wrong_channels, &conv, None).is_err());
        let leftover = random(&[1, 8, 8, 3], 1.0, 3);
        let e = conv2d_nhwc(&leftover, &conv, None).unwrap_err().to_string();
        assert!(e.contains("stride"), "{e}");
        let small = random(&[1, 2, 2, 3], 1.0, 4);
        assert!(conv2d_nhwc(&small, &conv, None).is_err());
        let rank3 = random(&[7, 7, 3], 1.0, 5);
        assert!(conv2d_nhwc(&rank3, &conv, None).is_err());
        let (_, _, stride0) = conv_layer(2, 3, 3, 0, 6);
        let e = conv2d_nhwc(&random(&[1, 7, 7, 3], 1.0, 7), &stride0, None).unwrap_err();
        assert!(e.to_string().contains("stride 0"), "{e}");
    }
}
