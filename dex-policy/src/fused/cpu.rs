//! Access to contiguous f32 CPU storage, which every fused kernel needs (other devices and dtypes fall back to candle).

use candle_core::{CpuStorage, DType, Device, Layout, Tensor};

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
