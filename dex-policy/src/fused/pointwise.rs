//! Element-wise kernels: a fast `exp` for non-positive inputs, ELU and ReLU with their gradients from the output.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use super::cpu::*;

pub(super) const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two (Cody and Waite's range reduction): a high part with few
/// significant bits, so `n · LN2_HI` is exact for the `n` that occur, and the rest.
pub(super) const LN2_HI: f32 = 0.693_359_4;
pub(super) const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 · 2²³: adding it rounds an `f32` of magnitude below 2²² to an integer, which then
/// sits in the low bits of the sum's mantissa.
pub(super) const ROUNDER: f32 = 12_582_912.0;

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
pub(super) enum Pointwise {
    /// ELU with this `alpha` (≥ 0).
    Elu(f32),
    Relu,
}

/// ELU of `x`. NaN fails `x <= 0` and is passed through.
#[inline(always)]
pub(super) fn elu_value(alpha: f32, x: f32) -> f32 {
    let neg = alpha * (exp_nonpositive(x) - 1.0);
    if x <= 0.0 { neg } else { x }
}

/// ReLU of `x`, NaN passed through.
#[inline(always)]
pub(super) fn relu_value(x: f32) -> f32 {
    if x <= 0.0 { 0.0 } else { x }
}

/// `grad · elu'(x)` from the output `y`: `y > 0` exactly when `x > 0` (`alpha ≥ 0`).
#[inline(always)]
pub(super) fn elu_grad(alpha: f32, g: f32, y: f32) -> f32 {
    if y > 0.0 { g } else { g * (y + alpha) }
}

/// `grad · relu'(x)` from the output `y`, with the left derivative 0 at `x = 0`.
#[inline(always)]
pub(super) fn relu_grad(g: f32, y: f32) -> f32 {
    if y > 0.0 { g } else { 0.0 }
}

impl Pointwise {
    /// Applies the activation to every value in place.
    pub(super) fn apply_in_place(self, values: &mut [f32]) {
        // A `match` outside the loop, so that each loop is branch-free and vectorised.
        match self {
            Self::Elu(alpha) => values.iter_mut().for_each(|v| *v = elu_value(alpha, *v)),
            Self::Relu => values.iter_mut().for_each(|v| *v = relu_value(*v)),
        }
    }
}

/// The gradient with respect to the pre-activation: `grad · f'(x)` from the output `y`
/// of an op that applied `act` last, or `grad` itself without an activation.
pub(super) fn through_activation(
    act: Option<Pointwise>,
    grad: Tensor,
    y: &Tensor,
) -> candle_core::Result<Tensor> {
    match act {
        Some(a) => grad.apply_op2_no_bwd(&y.detach(), &ActivationGrad(a)),
        None => Ok(grad),
    }
}

pub(super) struct Activate(pub(super) Pointwise);

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
pub(super) struct ActivationGrad(pub(super) Pointwise);

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
        // A `match` outside the loop, so that each loop is branch-free and vectorised.
        let (a, b) = ((s1, l1), (s2, l2));
        match self.0 {
            Pointwise::Elu(alpha) => zip_map(self.name(), a, b, |g, y| elu_grad(alpha, g, y)),
            Pointwise::Relu => zip_map(self.name(), a, b, relu_grad),
        }
    }
}
