//! Conversions between ndarray batches and candle tensors, in one place.

use candle_core::{Device, Tensor};
use ndarray::{Array2, ArrayView2};

use crate::error::Result;

/// A `B × D` f32 tensor from an array view.
pub fn to_tensor(a: ArrayView2<'_, f32>) -> Result<Tensor> {
    let (r, c) = a.dim();
    let data: Vec<f32> = a.iter().copied().collect();
    Ok(Tensor::from_vec(data, (r, c), &Device::Cpu)?)
}

/// A `B × D` array from a 2-D tensor.
pub fn to_array(t: &Tensor) -> Result<Array2<f32>> {
    let (r, c) = t.dims2()?;
    let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
    Ok(Array2::from_shape_vec((r, c), v)?)
}
