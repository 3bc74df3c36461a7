//! LayerNorm over the last axis as one custom op, with its backward.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use super::cpu::*;
use super::pointwise::*;

/// `act(LayerNorm(x))` over the last axis.
pub(super) struct LayerNorm {
    pub(super) eps: f32,
    pub(super) act: Option<Pointwise>,
}

/// `Σ f(aᵢ, bᵢ)` in eight interleaved partial sums, so the compiler can vectorise it
/// (one running sum is a chain of dependent additions).
#[inline]
pub(super) fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
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
pub(super) fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
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
pub(super) struct LayerNormGrad {
    pub(super) eps: f32,
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
