//! Evaluation of a policy on a [`VecEnv`]: success over a number of episodes.

use std::collections::BTreeMap;

use dex_sim::VecEnv;
use rand::SeedableRng;

use crate::batch::batch_obs;
use crate::error::{Result, check_len, invalid};
use crate::policy::{ActMode, Policy};

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    /// Episodes counted.
    pub episodes: usize,
    /// Fraction of them that ended in success.
    pub success_rate: f64,
    /// Mean undiscounted return.
    pub mean_return: f64,
    /// Mean episode length (control steps).
    pub mean_length: f64,
    /// Mean over episodes of each named figure of the task's info at the episode's last
    /// step (e.g. `rotation` for the rotate task), over the episodes that report it.
    pub final_info: BTreeMap<String, f64>,
}

/// Runs `policy` in `mode` on `venv` (reset with `seed`) for `episodes` episodes,
/// a fixed share per environment (the first `episodes % n` environments run one more),
/// so that short episodes are not over-counted: counting episodes in the order they end
/// would favour the ones that end early (successes, in most tasks) whenever few
/// episodes per environment are asked for. Deterministic: the same seed gives the same
/// result. Actions are clipped to the action space.
///
/// # Errors
///
/// Width mismatches, environment errors, NaN observations.
pub fn evaluate(
    policy: &mut dyn Policy,
    venv: &mut VecEnv,
    episodes: usize,
    seed: u64,
    mode: ActMode,
) -> Result<EvalResult> {
    if episodes == 0 {
        return Err(invalid("evaluate at least one episode"));
    }
    let n = venv.num_envs();
    let od = venv.observation_spec().state.dim();
    let (low, high) = (
        venv.action_space().low.clone(),
        venv.action_space().high.clone(),
    );
    check_len("observation width", policy.observation_dim(), od)?;
    check_len("action width", policy.action_dim(), low.len())?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xE7A1);
    let (obs, _) = venv.reset(seed)?;
    let mut x = batch_obs(&obs, od)?;
    for i in 0..n {
        policy.reset(i);
    }
    // Episodes each environment still has to run.
    let mut quota: Vec<usize> = (0..n)
        .map(|i| episodes / n + usize::from(i < episodes % n))
        .collect();
    let (mut count, mut successes, mut ret_sum, mut len_sum) = (0usize, 0usize, 0.0, 0usize);
    let mut info_sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut ret = vec![0.0; n];
    let mut len = vec![0usize; n];
    while count < episodes {
        let a = policy.act(x.view(), mode, &mut rng)?;
        let mut flat = Vec::with_capacity(a.len());
        for row in a.rows() {
            for ((v, l), h) in row.iter().zip(&low).zip(&high) {
                flat.push(v.clamp(*l, *h));
            }
        }
        let step = venv.step(&flat)?;
        for i in 0..n {
            x.row_mut(i)
                .assign(&ndarray::ArrayView1::from(&step.obs[i].state));
            if step.reset[i] {
                policy.reset(i);
                continue;
            }
            ret[i] += step.rewards[i];
            len[i] += 1;
            if (step.terminated[i] || step.truncated[i]) && quota[i] > 0 {
                quota[i] -= 1;
                count += 1;
                successes += usize::from(step.infos[i].success);
                for (k, v) in &step.infos[i].values {
                    let e = info_sums.entry(k.clone()).or_insert((0.0, 0));
                    e.0 += v;
                    e.1 += 1;
                }
                ret_sum += ret[i];
                len_sum += len[i];
                ret[i] = 0.0;
                len[i] = 0;
            }
        }
    }
    Ok(EvalResult {
        episodes: count,
        success_rate: successes as f64 / count as f64,
        mean_return: ret_sum / count as f64,
        mean_length: len_sum as f64 / count as f64,
        final_info: info_sums
            .into_iter()
            .map(|(k, (sum, n))| (k, sum / n as f64))
            .collect(),
    })
}
