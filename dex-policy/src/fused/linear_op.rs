//! The linear layer as one custom op (`x Wᵀ + b`, activation folded in) with its backward, and the column sum of the bias gradient.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Shape, Tensor};

use super::cpu::*;
use super::patches::*;
use super::pointwise::*;

/// `act(x · wᵀ + b)` for contiguous `x: [rows, in]`, `w: [out, in]`, `b: [out]`; with
/// `patches`, `x` is a contiguous `[B, H, W, C]` image whose unfolded patches take the
/// place of the rows. The patches live only inside the op (the backward unfolds
/// again), so that candle's autograd never holds them or their gradient, `k²` times
/// the size of the image.
pub(super) struct LinearOp {
    pub(super) act: Option<Pointwise>,
    pub(super) patches: Option<Unfold>,
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
        let db = grad
            .apply_op1_no_bwd(&ColumnSum {
                groups: 1,
                width: b.elem_count(),
            })?
            .reshape(b.shape())?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// `act(x · wᵀ + b)` on CPU storage: `x: [rows, in]`, `w: [out, in]`, `b: [out]`, all
/// contiguous; returns `[rows, out]`.
pub(super) fn affine_forward(
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

/// Sum over the rows of each of `groups` equal parts of a contiguous tensor of rows of
/// `width`, row by row (candle reduces over a batch axis with a strided loop); the
/// result is `[groups, width]`.
pub(super) struct ColumnSum {
    pub(super) groups: usize,
    pub(super) width: usize,
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
        let (groups, width) = (self.groups, self.width);
        if groups == 0 || width == 0 || x.len() % (groups * width) != 0 {
            candle_core::bail!(
                "{}: input {:?} in {groups} groups of rows of {width}",
                self.name(),
                layout.dims()
            );
        }
        let mut sum = vec![0.0f32; groups * width];
        for (group, out) in x
            .chunks_exact(x.len() / groups)
            .zip(sum.chunks_exact_mut(width))
        {
            for row in group.chunks_exact(width) {
                for (s, &v) in out.iter_mut().zip(row) {
                    *s += v;
                }
            }
        }
        Ok((CpuStorage::F32(sum), Shape::from((groups, width))))
    }
}
