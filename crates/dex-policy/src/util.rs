//! Small conversions between ndarray and candle, seeded normal noise and gradient
//! clipping, shared by the trainers.

use std::path::Path;

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use ndarray::{Array2, ArrayView2};
use rand::RngCore;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, invalid};
use crate::ppo::{META_FILE, WEIGHTS_FILE};

/// A `B × D` f32 tensor from an array view.
pub(crate) fn to_tensor(a: ArrayView2<'_, f32>) -> Result<Tensor> {
    let (r, c) = a.dim();
    let data: Vec<f32> = a.iter().copied().collect();
    Ok(Tensor::from_vec(data, (r, c), &Device::Cpu)?)
}

/// A `B × D` array from a 2-D tensor.
pub(crate) fn to_array(t: &Tensor) -> Result<Array2<f32>> {
    let (r, c) = t.dims2()?;
    let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
    Array2::from_shape_vec((r, c), v).map_err(|e| invalid(e.to_string()))
}

/// One standard normal draw (Box–Muller) from the caller's generator: candle's CPU
/// random tensors cannot be seeded, so every trainer draws its noise here.
pub(crate) fn standard_normal(rng: &mut dyn RngCore) -> f64 {
    use rand::Rng;
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A tensor of standard normal draws.
pub(crate) fn normal_tensor(rng: &mut dyn RngCore, shape: (usize, usize)) -> Result<Tensor> {
    let v: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| standard_normal(rng) as f32)
        .collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}

/// Scales gradients so their global L2 norm is at most `max_norm`.
pub(crate) fn clip_gradients(
    vars: &[Var],
    grads: &mut candle_core::backprop::GradStore,
    max_norm: f64,
) -> Result<()> {
    let mut total = 0.0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = total.sqrt();
    if norm > max_norm {
        let k = max_norm / (norm + 1e-6);
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * k)?);
            }
        }
    }
    Ok(())
}

/// The variables of `varmap` whose names start with `prefix`, in name order.
pub(crate) fn vars_with_prefix(varmap: &VarMap, prefix: &str) -> Result<Vec<(String, Var)>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| invalid("variable store lock poisoned"))?;
    let mut out: Vec<(String, Var)> = data
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Checks that `venv` holds the `expected` number of environments a config asks for.
pub(crate) fn check_num_envs(venv: &dex_sim::VecEnv, expected: usize) -> Result<()> {
    if venv.num_envs() != expected {
        return Err(invalid(format!(
            "the config asks for {expected} environments, the VecEnv has {}",
            venv.num_envs()
        )));
    }
    Ok(())
}

/// An [`crate::Error::Checkpoint`] for the checkpoint directory `dir`.
pub(crate) fn checkpoint_error(dir: &Path, reason: impl Into<String>) -> crate::Error {
    crate::Error::Checkpoint {
        path: dir.display().to_string(),
        reason: reason.into(),
    }
}

/// Writes a checkpoint: `varmap` to `policy.safetensors` and `meta` to
/// `checkpoint.toml` in `dir` (created if needed).
pub(crate) fn write_checkpoint<M: Serialize>(dir: &Path, varmap: &VarMap, meta: &M) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    varmap.save(dir.join(WEIGHTS_FILE))?;
    let text = toml::to_string(meta).map_err(|e| invalid(e.to_string()))?;
    std::fs::write(dir.join(META_FILE), text)?;
    Ok(())
}

/// Reads and parses `checkpoint.toml` in `dir`.
pub(crate) fn read_checkpoint_meta<M: DeserializeOwned>(dir: &Path) -> Result<M> {
    let text = std::fs::read_to_string(dir.join(META_FILE))
        .map_err(|e| checkpoint_error(dir, format!("reading {META_FILE}: {e}")))?;
    toml::from_str(&text).map_err(|e| checkpoint_error(dir, format!("parsing {META_FILE}: {e}")))
}

/// Loads `policy.safetensors` in `dir` into the variables of `varmap` (shapes must match).
pub(crate) fn load_weights(dir: &Path, varmap: &mut VarMap) -> Result<()> {
    varmap
        .load(dir.join(WEIGHTS_FILE))
        .map_err(|e| checkpoint_error(dir, format!("loading {WEIGHTS_FILE}: {e}")))
}

#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use candle_core::{Device, Tensor};
    use candle_nn::VarMap;

    /// Checks d loss / d v for every entry of every variable of `varmap` whose name
    /// starts with one of `prefixes` (`""` for all) against central differences; the
    /// store must be f64. Panics naming the first entry that disagrees, or when a
    /// variable gets no gradient at all.
    pub(crate) fn check_gradients(varmap: &VarMap, prefixes: &[&str], loss: &dyn Fn() -> Tensor) {
        let grads = loss().backward().unwrap();
        let data = varmap.data().lock().unwrap();
        let mut names: Vec<&String> = data
            .keys()
            .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
            .collect();
        names.sort();
        let mut checked = 0;
        for name in names {
            let var = &data[name];
            let g: Vec<f64> = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"))
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            for k in 0..base.len() {
                let h = 1e-6;
                let mut v = base.clone();
                v[k] += h;
                var.set(&Tensor::from_vec(v.clone(), var.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                let lp: f64 = loss().to_scalar().unwrap();
                v[k] -= 2.0 * h;
                var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                let lm: f64 = loss().to_scalar().unwrap();
                var.set(&Tensor::from_vec(base.clone(), var.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                let numeric = (lp - lm) / (2.0 * h);
                assert!(
                    (numeric - g[k]).abs() <= 1e-5 + 1e-4 * numeric.abs(),
                    "{name}[{k}]: autograd {} vs finite difference {numeric}",
                    g[k]
                );
                checked += 1;
            }
        }
        assert!(checked > 0, "no variable matched {prefixes:?}");
    }
}
