//! Tests of SAC: C51, the replay buffer, losses and gradients, training.
//! Compiled only in tests: `mod.rs` declares this module under `#[cfg(test)]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{Module, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::nets::{Mlp, init_seeded};

use super::c51::*;
use super::config::*;
use super::networks::*;

use candle_core::{DType, Device};

use crate::gradients::testing::check_gradients;

fn tiny(distributional: bool) -> (VarMap, Actor, [Mlp; 2], Tensor, Tensor, Tensor) {
    let config = SacConfig {
        hidden: vec![5],
        atoms: 5,
        v_min: -2.0,
        v_max: 2.0,
        distributional,
        ..SacConfig::default()
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
    let actor = Actor::new(&config, 3, &[-1.0, -1.0], &[1.0, 1.0], &vb.pp("actor")).unwrap();
    let cc = critic_config(&config, 3, 2);
    let q = [
        Mlp::new(&cc, &vb.pp("q1")).unwrap(),
        Mlp::new(&cc, &vb.pp("q2")).unwrap(),
    ];
    init_seeded(&varmap, 3, |_| 1.5).unwrap();
    let x = Tensor::new(
        &[[0.3f64, -0.7, 0.2], [1.1, 0.4, -0.5], [-0.2, 0.0, 0.9]],
        &Device::Cpu,
    )
    .unwrap();
    let eps = Tensor::new(&[[0.5f64, -1.2], [0.1, 0.8], [-0.3, 0.2]], &Device::Cpu).unwrap();
    let support = Tensor::new(&[-2.0f64, -1.0, 0.0, 1.0, 2.0], &Device::Cpu).unwrap();
    (varmap, actor, q, x, eps, support)
}

#[test]
fn actor_loss_gradients_match_finite_differences() {
    for distributional in [true, false] {
        let (varmap, actor, q, x, eps, support) = tiny(distributional);
        let s = distributional.then_some(&support);
        check_gradients(&varmap, &["actor."], &|| {
            actor_loss(&actor, &q, s, &x, &eps, 0.2).unwrap().0
        });
    }
}

#[test]
fn c51_critic_loss_gradients_match_finite_differences() {
    let (varmap, _actor, q, x, _eps, _support) = tiny(true);
    let a = Tensor::new(&[[0.2f64, -0.4], [0.9, 0.1], [-0.6, 0.5]], &Device::Cpu).unwrap();
    let target = Tensor::new(
        &[
            [0.1f64, 0.2, 0.4, 0.2, 0.1],
            [0.0, 0.0, 0.5, 0.5, 0.0],
            [1.0, 0.0, 0.0, 0.0, 0.0],
        ],
        &Device::Cpu,
    )
    .unwrap();
    let xa = Tensor::cat(&[&x, &a], 1).unwrap();
    check_gradients(&varmap, &["q1.", "q2."], &|| {
        (c51_cross_entropy(&q[0].forward(&xa).unwrap(), &target).unwrap()
            + c51_cross_entropy(&q[1].forward(&xa).unwrap(), &target).unwrap())
        .unwrap()
    });
}

#[test]
fn tanh_gaussian_log_density_matches_the_change_of_variables() {
    let (_varmap, actor, _q, x, eps, _support) = tiny(true);
    let (mu, log_std) = actor.dist(&x).unwrap();
    let (a, logp) = actor.sample(&x, &eps).unwrap();
    let rows = |t: &Tensor| -> Vec<Vec<f64>> { t.to_vec2().unwrap() };
    let (mu, log_std, a, e) = (rows(&mu), rows(&log_std), rows(&a), rows(&eps));
    let logp: Vec<f64> = logp.to_vec1().unwrap();
    for i in 0..3 {
        let mut expected = 0.0;
        for j in 0..2 {
            let s = log_std[i][j].exp();
            let u = mu[i][j] + s * e[i][j];
            assert!((a[i][j] - u.tanh()).abs() < 1e-12);
            let gauss =
                -0.5 * e[i][j] * e[i][j] - log_std[i][j] - 0.5 * (2.0 * std::f64::consts::PI).ln();
            expected += gauss - (1.0 - u.tanh().powi(2)).ln();
        }
        assert!(
            (logp[i] - expected).abs() < 1e-9,
            "{} vs {expected}",
            logp[i]
        );
    }
}
