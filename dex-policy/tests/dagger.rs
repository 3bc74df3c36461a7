//! Behaviour cloning and DAgger: a student that sees less recovers the teacher.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::privileged_point_envs;

use dex_policy::{
    ActMode, BcConfig, DaggerConfig, Dataset, Error, Policy, ScriptedPolicy, StudentPolicy, dagger,
    evaluate, load_checkpoint,
};
use ndarray::array;
use rand::SeedableRng;
use std::ops::ControlFlow;

/// The teacher reads the privileged difference `target − x` (index 2).
fn teacher() -> ScriptedPolicy<impl FnMut(&[f32]) -> Vec<f32> + Send> {
    ScriptedPolicy::new(3, 1, |obs: &[f32]| vec![(5.0 * obs[2]).clamp(-1.0, 1.0)])
}

fn config(seed: u64) -> DaggerConfig {
    DaggerConfig {
        iterations: 5,
        steps_per_iteration: 40,
        beta: 1.0,
        beta_decay: 0.5,
        chunk_rows: 500,
        // The student sees x and the target, not their difference.
        keep: vec![[0, 2]],
        bc: BcConfig {
            hidden: vec![64, 64],
            epochs: 20,
            batch_size: 128,
            learning_rate: 3e-3,
            seed,
            ..BcConfig::default()
        },
        seed,
    }
}

#[test]
fn a_dagger_student_recovers_the_teachers_success_without_the_privileged_input() {
    let dir = std::env::temp_dir().join(format!("dex-dagger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut t = teacher();
    let teacher_result = evaluate(
        &mut t,
        &mut privileged_point_envs(16),
        200,
        11,
        ActMode::Deterministic,
    )
    .unwrap();
    assert!(teacher_result.success_rate > 0.95);
    let mut rows = Vec::new();
    let mut student = dagger(
        &mut t,
        &mut privileged_point_envs(16),
        &dir.join("data"),
        &config(3),
        toml::Table::new(),
        |it, _| {
            rows.push(it.rows);
            Ok(ControlFlow::Continue(()))
        },
    )
    .unwrap();
    // Every iteration added rows; the dataset on disk holds them all.
    assert_eq!(rows.len(), 5);
    assert!(rows.windows(2).all(|w| w[1] > w[0]), "{rows:?}");
    let data = Dataset::open(&dir.join("data")).unwrap();
    assert_eq!(data.len(), *rows.last().unwrap());
    let untrained =
        StudentPolicy::new(&config(3).bc, 3, 1, vec![[0, 2]], toml::Table::new()).unwrap();
    let mut untrained = untrained;
    let before = evaluate(
        &mut untrained,
        &mut privileged_point_envs(16),
        200,
        11,
        ActMode::Deterministic,
    )
    .unwrap();
    let after = evaluate(
        &mut student,
        &mut privileged_point_envs(16),
        200,
        11,
        ActMode::Deterministic,
    )
    .unwrap();
    assert!(
        after.success_rate >= 0.9 * teacher_result.success_rate
            && after.success_rate > before.success_rate + 0.3,
        "teacher {:.2}, student {:.2} → {:.2}",
        teacher_result.success_rate,
        before.success_rate,
        after.success_rate
    );
    // The student does not read the privileged entry: changing it changes nothing.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let a = student
        .act(
            array![[0.1f32, 0.5, 0.4]].view(),
            ActMode::Deterministic,
            &mut rng,
        )
        .unwrap();
    let b = student
        .act(
            array![[0.1f32, 0.5, -9.0]].view(),
            ActMode::Deterministic,
            &mut rng,
        )
        .unwrap();
    assert_eq!(a, b);
    // Checkpoints round-trip, also through load_checkpoint.
    student.save(&dir.join("student")).unwrap();
    let mut loaded = load_checkpoint(&dir.join("student")).unwrap();
    assert_eq!(loaded.algorithm, "dagger");
    let c = loaded
        .policy
        .act(
            array![[0.1f32, 0.5, 0.4]].view(),
            ActMode::Deterministic,
            &mut rng,
        )
        .unwrap();
    assert_eq!(a, c);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dagger_is_deterministic_and_rejects_bad_settings() {
    let base = std::env::temp_dir().join(format!("dex-dagger-det-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let short = DaggerConfig {
        iterations: 2,
        steps_per_iteration: 10,
        ..config(5)
    };
    let mut weights = Vec::new();
    for run in 0..2 {
        let mut t = teacher();
        let s = dagger(
            &mut t,
            &mut privileged_point_envs(4),
            &base.join(format!("data{run}")),
            &short,
            toml::Table::new(),
            |_, _| Ok(ControlFlow::Continue(())),
        )
        .unwrap();
        let d = base.join(format!("student{run}"));
        s.save(&d).unwrap();
        weights.push(std::fs::read(d.join(dex_policy::ppo::WEIGHTS_FILE)).unwrap());
    }
    assert_eq!(weights[0], weights[1]);
    // An existing dataset is not overwritten.
    let mut t = teacher();
    let again = dagger(
        &mut t,
        &mut privileged_point_envs(4),
        &base.join("data0"),
        &short,
        toml::Table::new(),
        |_, _| Ok(ControlFlow::Continue(())),
    );
    assert!(matches!(again, Err(Error::Dataset { .. })));
    // Ranges outside the observation, a teacher of the wrong width.
    let bad = DaggerConfig {
        keep: vec![[1, 4]],
        ..short.clone()
    };
    let mut t = teacher();
    assert!(matches!(
        dagger(
            &mut t,
            &mut privileged_point_envs(4),
            &base.join("bad"),
            &bad,
            toml::Table::new(),
            |_, _| Ok(ControlFlow::Continue(()))
        ),
        Err(Error::InvalidSetting { .. })
    ));
    let mut narrow = ScriptedPolicy::new(2, 1, |_: &[f32]| vec![0.0]);
    assert!(
        dagger(
            &mut narrow,
            &mut privileged_point_envs(4),
            &base.join("bad2"),
            &short,
            toml::Table::new(),
            |_, _| Ok(ControlFlow::Continue(()))
        )
        .is_err()
    );
    // A corrupt student checkpoint is a clear error.
    let d = base.join("student0");
    std::fs::write(d.join(dex_policy::ppo::WEIGHTS_FILE), b"garbage").unwrap();
    assert!(matches!(
        StudentPolicy::load(&d),
        Err(Error::Checkpoint { .. })
    ));
    std::fs::remove_dir_all(&base).ok();
}
