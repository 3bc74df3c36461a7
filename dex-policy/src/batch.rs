//! A [`dex_sim::VecEnv`]'s observations as one batch, and the check that a vectorised
//! environment holds as many environments as a config asks for.

use ndarray::Array2;

use crate::error::{Result, check_len};

/// The state vectors of `obs` as the rows of one `len × dim` array.
pub(crate) fn batch_obs(obs: &[dex_sim::Observation], dim: usize) -> Result<Array2<f32>> {
    let mut out = Array2::zeros((obs.len(), dim));
    for (i, o) in obs.iter().enumerate() {
        check_len("observation width", dim, o.state.len())?;
        out.row_mut(i).assign(&ndarray::ArrayView1::from(&o.state));
    }
    Ok(out)
}

#[cfg(feature = "candle")]
/// Checks that `venv` holds the `expected` number of environments a config asks for.
pub(crate) fn check_num_envs(venv: &dex_sim::VecEnv, expected: usize) -> Result<()> {
    check_len("environments in the VecEnv", expected, venv.num_envs())
}
