//! GELU with the tanh approximation, one pass each way.
//!
//! candle computes `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))` with libm's `tanhf`
//! (itself an `expm1f` call) per element, and its backward as about ten full-size
//! tensor ops, two of them `powf`. Here the forward is one vectorised pass and the
//! backward another, from the input.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use super::cpu::*;
use super::pointwise::exp_nonpositive;

/// √(2/π).
const K: f32 = 0.797_884_6;
/// The cubic term's weight.
const C: f32 = 0.044_715;

/// `tanh(u)` from one exponential of a non-positive argument: with `e = e^(−2|u|)`,
/// `tanh |u| = (1 − e) / (1 + e)`. Absolute error about 1e-7 (a test checks it
/// against `f32::tanh`), which is what GELU's `1 + tanh` needs. NaN gives 0.
#[inline(always)]
fn tanh_approx(u: f32) -> f32 {
    let e = exp_nonpositive(-2.0 * u.abs());
    ((1.0 - e) / (1.0 + e)).copysign(u)
}

/// `tanh` of GELU's inner argument at `x`.
#[inline(always)]
fn inner_tanh(x: f32) -> f32 {
    tanh_approx(K * x * (1.0 + C * x * x))
}

/// GELU (tanh approximation) of `x`; NaN stays NaN.
#[inline(always)]
pub(super) fn gelu_value(x: f32) -> f32 {
    0.5 * x * (1.0 + inner_tanh(x))
}

/// `d gelu / dx` at `x`: `0.5 (1 + t) + 0.5 x (1 − t²) √(2/π) (1 + 3 · 0.044715 x²)`.
#[inline(always)]
pub(super) fn gelu_derivative(x: f32) -> f32 {
    let t = inner_tanh(x);
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * K * (1.0 + 3.0 * C * x * x)
}

/// GELU with the tanh approximation, as [`Tensor::gelu`] computes it (to within about
/// 1e-7 of the value and of the gradient), as one op with a fused backward. Other
/// dtypes and devices use [`Tensor::gelu`].
///
/// # Errors
///
/// A tensor error from candle.
pub fn gelu(x: &Tensor) -> candle_core::Result<Tensor> {
    if !is_cpu_f32(x) {
        return x.gelu();
    }
    x.contiguous()?.apply_op1(Gelu)
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "dex-gelu"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        let y: Vec<f32> = x.iter().map(|&v| gelu_value(v)).collect();
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?;
        Ok(Some(grad.apply_op2_no_bwd(
            &arg.detach().contiguous()?,
            &GeluGrad,
        )?))
    }
}

/// `grad · gelu'(x)`.
struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "dex-gelu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        zip_map(self.name(), (s1, l1), (s2, l2), |g, x| {
            g * gelu_derivative(x)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn tanh_approx_is_close_to_libm() {
        let mut worst = 0.0f32;
        for i in -200_000..=200_000 {
            let u = i as f32 * 1e-4;
            worst = worst.max((tanh_approx(u) - u.tanh()).abs());
        }
        assert!(worst < 2e-7, "worst {worst}");
        assert_eq!(tanh_approx(1e3), 1.0);
        assert_eq!(tanh_approx(-1e3), -1.0);
        assert_eq!(tanh_approx(0.0), 0.0);
    }

    #[test]
    fn values_and_gradients_match_candle() {
        let xs: Vec<f32> = (-1200..=1200).map(|i| i as f32 * 0.01).collect();
        let x = Var::from_tensor(&Tensor::new(xs.as_slice(), &Device::Cpu).unwrap()).unwrap();
        // A non-uniform upstream gradient, so the product with it is checked too.
        let w = Tensor::new(
            xs.iter()
                .map(|v| 1.0 + 0.5 * v.sin())
                .collect::<Vec<f32>>()
                .as_slice(),
            &Device::Cpu,
        )
        .unwrap();
        let ours = gelu(x.as_tensor()).unwrap();
        let theirs = x.as_tensor().gelu().unwrap();
        let (a, b) = (
            ours.to_vec1::<f32>().unwrap(),
            theirs.to_vec1::<f32>().unwrap(),
        );
        for ((a, b), x) in a.iter().zip(&b).zip(&xs) {
            assert!(
                (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                "gelu({x}): {a} vs {b}"
            );
        }
        let ga = (&ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (&theirs * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let ga = ga.get(&x).unwrap().to_vec1::<f32>().unwrap();
        let gb = gb.get(&x).unwrap().to_vec1::<f32>().unwrap();
        // candle's backward rounds √(2/π) and its cube coefficient to six digits.
        for ((a, b), x) in ga.iter().zip(&gb).zip(&xs) {
            assert!(
                (a - b).abs() <= 2e-5 * (1.0 + b.abs()),
                "gelu'({x}): {a} vs {b}"
            );
        }
        // Against a central difference of the op itself.
        for &x in &[-3.0f32, -1.0, -0.2, 0.0, 0.3, 1.5, 4.0] {
            let h = 1e-2f64;
            let fd = (f64::from(gelu_value(x + h as f32)) - f64::from(gelu_value(x - h as f32)))
                / (2.0 * h);
            assert!((f64::from(gelu_derivative(x)) - fd).abs() < 1e-3, "at {x}");
        }
        let nan = Tensor::new(&[f32::NAN], &Device::Cpu).unwrap();
        assert!(gelu(&nan).unwrap().to_vec1::<f32>().unwrap()[0].is_nan());
    }
}
