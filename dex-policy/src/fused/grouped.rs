//! Grouped linear layers (a separate weight matrix per group, as for one small network
//! per joint) as one custom op with its backward.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use super::activation::Activation;
use super::cpu::*;
use super::linear_op::ColumnSum;
use super::ops::{split_activation, then_activate};
use super::pointwise::*;

/// `act(x_g · w_g + b_g)` for every group `g`: `x` is `[G, rows, in]`, `w` is
/// `[G, in, out]`, `b` is `[G, 1, out]`; the result `[G, rows, out]`. The bias and the
/// activation are applied in place of the batched product, and the backward is one op
/// (two batched products and a row sum) instead of candle's chain of broadcasts.
/// Other dtypes and devices fall back to candle's own ops.
///
/// # Errors
///
/// Mismatched shapes; tensor errors.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dex_policy::fused::{Activation, grouped_linear};
/// let x = Tensor::ones((2, 3, 4), candle_core::DType::F32, &Device::Cpu)?;
/// let w = Tensor::ones((2, 4, 5), candle_core::DType::F32, &Device::Cpu)?;
/// let b = Tensor::zeros((2, 1, 5), candle_core::DType::F32, &Device::Cpu)?;
/// let y = grouped_linear(&x, &w, &b, Some(Activation::Relu))?;
/// assert_eq!(y.dims(), &[2, 3, 5]);
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?[0], 4.0);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn grouped_linear(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    activation: Option<Activation>,
) -> candle_core::Result<Tensor> {
    let (g, _, inputs) = x.dims3()?;
    let (wg, w_inputs, outputs) = w.dims3()?;
    if wg != g || w_inputs != inputs || b.dims() != [g, 1, outputs] {
        candle_core::bail!(
            "grouped linear: input {:?}, weight {:?}, bias {:?}",
            x.dims(),
            w.dims(),
            b.dims()
        );
    }
    if !(is_cpu_f32(x) && is_cpu_f32(w) && is_cpu_f32(b)) {
        let y = x.matmul(w)?.broadcast_add(b)?;
        return then_activate(y, activation);
    }
    let (act, after) = split_activation(activation);
    let y =
        x.contiguous()?
            .apply_op3(&w.contiguous()?, &b.contiguous()?, GroupedLinearOp { act })?;
    then_activate(y, after)
}

struct GroupedLinearOp {
    act: Option<Pointwise>,
}

impl CustomOp3 for GroupedLinearOp {
    fn name(&self) -> &'static str {
        "dex-grouped-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, rows, inputs) = xl.shape().dims3()?;
        let (_, _, outputs) = wl.shape().dims3()?;
        let bias = f32_slice(self.name(), bs, bl)?;
        let mut y = xs.matmul(ws, (g, rows, outputs, inputs), xl, wl)?;
        let CpuStorage::F32(values) = &mut y else {
            candle_core::bail!("{}: only f32 is supported", self.name());
        };
        for (group, b) in values
            .chunks_exact_mut(rows * outputs)
            .zip(bias.chunks_exact(outputs))
        {
            for row in group.chunks_exact_mut(outputs) {
                for (o, &v) in row.iter_mut().zip(b) {
                    *o += v;
                }
            }
        }
        if let Some(act) = self.act {
            act.apply_in_place(values);
        }
        Ok((y, Shape::from((g, rows, outputs))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = through_activation(self.act, grad_res.detach().contiguous()?, res)?;
        let dx = if x.track_op() {
            Some(grad.matmul(&w.detach().transpose(1, 2)?)?)
        } else {
            None
        };
        let dw = x.detach().transpose(1, 2)?.matmul(&grad)?;
        let (groups, _, width) = grad.dims3()?;
        let db = grad
            .apply_op1_no_bwd(&ColumnSum { groups, width })?
            .reshape((groups, 1, width))?;
        Ok((dx, Some(dw), Some(db)))
    }
}
