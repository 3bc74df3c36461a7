//! Gradient clipping, variable selection and (in tests) gradient checks against finite
//! differences, shared by the trainers.

use candle_core::Var;
use candle_nn::VarMap;

use crate::error::{Result, poisoned};

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
    let data = varmap.data().lock().map_err(poisoned)?;
    let mut out: Vec<(String, Var)> = data
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
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
