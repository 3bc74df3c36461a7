//! Access to contiguous f32 CPU storage, which every fused kernel needs (other devices and dtypes fall back to candle).

use candle_core::{CpuStorage, DType, Device, Layout, Shape, Tensor};

pub(super) fn is_cpu_f32(x: &Tensor) -> bool {
    x.dtype() == DType::F32 && matches!(x.device(), Device::Cpu)
}

/// The contiguous `f32` data of `storage` under `layout`, or an error naming `op`.
pub(super) fn f32_slice<'a>(
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

/// `f(g, v)` element by element over two contiguous `f32` tensors of the same length
/// (an upstream gradient and the values its derivative is read from), shaped as the
/// first; an error naming `op` otherwise. Generic over `f`, so each caller's loop is
/// compiled (and vectorised) on its own.
pub(super) fn zip_map(
    op: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    f: impl Fn(f32, f32) -> f32,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let grad = f32_slice(op, s1, l1)?;
    let values = f32_slice(op, s2, l2)?;
    if grad.len() != values.len() {
        candle_core::bail!("{op}: {} gradients for {} values", grad.len(), values.len());
    }
    let out: Vec<f32> = grad.iter().zip(values).map(|(&g, &v)| f(g, v)).collect();
    Ok((CpuStorage::F32(out), l1.shape().clone()))
}
