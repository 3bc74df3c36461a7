//! Variable stores: a fresh CPU store, seeded initialisation (candle's own CPU
//! initialisers cannot be seeded) and detached views for inference.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};

use crate::error::{Result, poisoned};

/// Overwrites every variable of `varmap` from a seeded generator, in name order:
/// linear and convolution weights `U(±1/sqrt(fan_in))` (PyTorch's default bound) times
/// `gain(name)`, biases 0, norm scales (1-D weights) 1. Variables whose name ends in `log_std` are left alone.
///
/// # Errors
///
/// A tensor error.
pub fn init_seeded(varmap: &VarMap, seed: u64, gain: impl Fn(&str) -> f64) -> Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let data = varmap.data().lock().map_err(poisoned)?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = if name.ends_with("log_std") {
            continue;
        } else if name.ends_with("weight") && dims.len() == 1 {
            // A norm's scale.
            vec![1.0; n]
        } else if name.ends_with("weight") && dims.len() >= 2 {
            // Linear `out × in`, convolution `out × in × k × k`: fan-in is the rest.
            let fan_in: usize = dims[1..].iter().product();
            let bound = gain(name) / (fan_in as f64).sqrt();
            (0..n)
                .map(|_| rng.random_range(-bound..=bound) as f32)
                .collect()
        } else {
            vec![0.0; n]
        };
        var.set(&Tensor::from_vec(values, dims.as_slice(), &Device::Cpu)?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

/// A fresh variable store and builder on the CPU, f32.
pub fn new_store() -> (VarMap, VarBuilder<'static>) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    (varmap, vb)
}

/// A builder over detached views of `varmap`'s variables: modules built from it compute
/// without recording a graph and get no gradients (candle has no `no_grad`), which is
/// faster for inference and keeps a network fixed inside another's loss. The views
/// share the variables' storage, so they see later in-place updates (optimiser steps,
/// `Var::set`); copy the tensors for a snapshot.
///
/// # Errors
///
/// A poisoned variable store.
pub fn frozen_builder(varmap: &VarMap) -> Result<VarBuilder<'static>> {
    let data = varmap.data().lock().map_err(poisoned)?;
    let tensors: std::collections::HashMap<String, Tensor> = data
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().detach()))
        .collect();
    Ok(VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu))
}
