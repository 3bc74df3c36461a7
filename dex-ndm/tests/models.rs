//! The dynamics models on synthetic joints whose dynamics are known.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_ndm::synthetic::{Plant, joint_data};
use dex_ndm::{
    Dataset, DynamicsModel, Error, FirstOrderPd, FitConfig, JointWise, JointWiseConfig,
    MockDynamics, PdConfig, WholeHand, WholeHandConfig, accuracy, load_model,
};
use ndarray::Array3;

fn quick_fit() -> FitConfig {
    FitConfig {
        epochs: 12.0,
        batch_size: 128,
        learning_rate: 2e-3,
        eval_every: 200,
        ..FitConfig::default()
    }
}

fn small_joint() -> JointWise {
    JointWise::new(
        3,
        JointWiseConfig {
            hidden: vec![32, 32],
            ..JointWiseConfig::default()
        },
    )
    .unwrap()
}

fn small_whole() -> WholeHand {
    WholeHand::new(
        3,
        WholeHandConfig {
            hidden: vec![64, 64],
            ..WholeHandConfig::default()
        },
    )
    .unwrap()
}

fn fitted(model: &mut dyn DynamicsModel, data: &Dataset) -> f64 {
    let (train, valid) = data.split(0.1, 0);
    model
        .fit(&train, &valid, &quick_fit(), &mut |_| {})
        .unwrap();
    accuracy(model, &valid).unwrap().rmse_rad
}

#[test]
fn learned_models_beat_the_first_order_fit_only_when_the_joint_is_not_first_order() {
    let first = joint_data(3, 30, 120, Plant::FirstOrder { gain: 0.3 }, 1).unwrap();
    let servo = joint_data(3, 30, 120, Plant::servo(), 1).unwrap();
    let mut pd = FirstOrderPd::new(3, PdConfig::default()).unwrap();
    let pd_first = fitted(&mut pd, &first);
    // The first-order fit recovers the plant: gain 0.3, no dead time, nothing else.
    for j in pd.joints().unwrap() {
        assert!(
            (j.gain - 0.3).abs() < 1e-4 && j.carry.abs() < 1e-4 && j.lag == 0,
            "{j:?}"
        );
    }
    assert!(
        pd_first < 1e-5,
        "first-order fit on first-order data: {pd_first}"
    );
    let pd_servo = fitted(&mut pd, &servo);
    for (name, mut model) in [
        ("joint", Box::new(small_joint()) as Box<dyn DynamicsModel>),
        ("whole", Box::new(small_whole())),
    ] {
        let nn_first = fitted(model.as_mut(), &first);
        eprintln!("first-order data: {name} {nn_first:.2e} rad, pd {pd_first:.2e}");
        // Close to exact (the targets move up to 0.08 rad a step)…
        assert!(nn_first < 0.01, "{name} on first-order data: {nn_first}");
        // …but not better than the model that is the truth.
        assert!(nn_first > pd_first, "{name}: {nn_first} vs pd {pd_first}");
    }
    for (name, mut model) in [
        ("joint", Box::new(small_joint()) as Box<dyn DynamicsModel>),
        ("whole", Box::new(small_whole())),
    ] {
        let nn_servo = fitted(model.as_mut(), &servo);
        eprintln!("servo data: {name} {nn_servo:.2e} rad, pd {pd_servo:.2e}");
        assert!(
            nn_servo < 0.7 * pd_servo,
            "{name} on servo data: {nn_servo} vs pd {pd_servo}"
        );
    }
}

fn histories(seed: u64) -> (Array3<f32>, Array3<f32>) {
    let mut k = seed as f32;
    let mut next = || {
        k = (k * 1.618 + 0.37).fract();
        k - 0.5
    };
    let q = Array3::from_shape_fn((5, 10, 3), |_| next());
    let a = Array3::from_shape_fn((5, 10, 3), |_| next());
    (q, a)
}

#[test]
fn a_joint_wise_model_cannot_see_other_joints_and_a_whole_hand_model_can() {
    let data = joint_data(3, 6, 60, Plant::servo(), 2).unwrap();
    let short = FitConfig {
        max_steps: 20,
        ..quick_fit()
    };
    let shared = JointWise::new(
        3,
        JointWiseConfig {
            hidden: vec![16],
            shared: true,
            ..JointWiseConfig::default()
        },
    )
    .unwrap();
    let mut models: Vec<(bool, Box<dyn DynamicsModel>)> = vec![
        (true, Box::new(small_joint())),
        (true, Box::new(shared)),
        (false, Box::new(small_whole())),
    ];
    for (isolated, model) in &mut models {
        model.fit(&data, &data, &short, &mut |_| {}).unwrap();
        let (q, a) = histories(3);
        let base = model.predict(q.view(), a.view()).unwrap();
        // Change joint 2's whole history.
        let (mut q2, mut a2) = (q.clone(), a.clone());
        for b in 0..5 {
            for t in 0..10 {
                q2[[b, t, 2]] += 0.3;
                a2[[b, t, 2]] -= 0.4;
            }
        }
        let moved = model.predict(q2.view(), a2.view()).unwrap();
        for b in 0..5 {
            assert_ne!(base[[b, 2]], moved[[b, 2]]);
            for i in 0..2 {
                if *isolated {
                    assert_eq!(base[[b, i]], moved[[b, i]], "{:?} joint {i}", model.kind());
                }
            }
        }
        if !*isolated {
            assert!((0..5).any(|b| base[[b, 0]] != moved[[b, 0]]));
        }
    }
}

#[test]
fn predictions_are_differentiable_with_respect_to_the_targets() {
    use dex_ndm::candle_core::{Device, Tensor, Var};
    let data = joint_data(3, 6, 60, Plant::servo(), 4).unwrap();
    let mut model = small_joint();
    let short = FitConfig {
        max_steps: 50,
        ..quick_fit()
    };
    model.fit(&data, &data, &short, &mut |_| {}).unwrap();
    let (q, a) = histories(7);
    let q = Tensor::from_iter(q.iter().copied(), &Device::Cpu)
        .unwrap()
        .reshape((5, 10, 3))
        .unwrap();
    let a_values: Vec<f32> = a.iter().copied().collect();
    let a = Var::from_tensor(&Tensor::from_slice(&a_values, (5, 10, 3), &Device::Cpu).unwrap())
        .unwrap();
    let loss = |t: &Tensor| {
        model
            .forward(&q, t)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let grads = loss(a.as_tensor()).backward().unwrap();
    let g = grads
        .get(&a)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for k in [0usize, 29, 44, 137, 149] {
        let eps = 1e-2f32;
        let at = |d: f32| {
            let mut v = a_values.clone();
            v[k] += d;
            let t = Tensor::from_slice(&v, (5, 10, 3), &Device::Cpu).unwrap();
            f64::from(loss(&t).to_scalar::<f32>().unwrap())
        };
        let fd = (at(eps) - at(-eps)) / (2.0 * f64::from(eps));
        let tol = 2e-2 * fd.abs().max(1e-2);
        assert!(
            (fd - f64::from(g[k])).abs() < tol,
            "value {k}: fd {fd} vs grad {}",
            g[k]
        );
    }
}

#[test]
fn models_save_and_load_with_the_same_predictions() {
    let data = joint_data(3, 6, 60, Plant::servo(), 5).unwrap();
    let short = FitConfig {
        max_steps: 20,
        ..quick_fit()
    };
    let dir = tempdir("roundtrip");
    let (q, a) = histories(11);
    let models: Vec<Box<dyn DynamicsModel>> = vec![
        Box::new(small_joint()),
        Box::new(small_whole()),
        Box::new(FirstOrderPd::new(3, PdConfig::default()).unwrap()),
        Box::new(MockDynamics::new(3, 10, 0.4).unwrap()),
    ];
    for mut model in models {
        model.fit(&data, &data, &short, &mut |_| {}).unwrap();
        let path = dir.join(model.kind().as_str());
        model.save(&path).unwrap();
        let back = load_model(&path).unwrap();
        assert_eq!(back.kind(), model.kind());
        assert_eq!(
            back.predict(q.view(), a.view()).unwrap(),
            model.predict(q.view(), a.view()).unwrap()
        );
    }
}

#[test]
fn bad_models_and_inputs_are_typed_errors() {
    let dir = tempdir("bad");
    assert!(matches!(
        load_model(&dir.join("missing")),
        Err(Error::Data { .. })
    ));
    // A model file that says another joint count than its weights hold.
    let data = joint_data(3, 4, 40, Plant::servo(), 6).unwrap();
    let mut model = small_joint();
    model
        .fit(
            &data,
            &data,
            &FitConfig {
                max_steps: 2,
                ..quick_fit()
            },
            &mut |_| {},
        )
        .unwrap();
    let path = dir.join("joint");
    model.save(&path).unwrap();
    let file = path.join(dex_ndm::MODEL_FILE);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("dof = 3", "dof = 4", 1)).unwrap();
    let err = load_model(&path).unwrap_err();
    assert!(matches!(err, Error::Data { .. }), "{err}");
    // Truncated weights.
    model.save(&path).unwrap();
    let weights = path.join(dex_ndm::WEIGHTS_FILE);
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    match load_model(&path) {
        Err(Error::Data { path, .. }) => assert!(path.ends_with(dex_ndm::WEIGHTS_FILE)),
        other => panic!("{other:?}"),
    }
    std::fs::write(&file, "format = \"something else\"\n").unwrap();
    assert!(matches!(load_model(&path), Err(Error::Data { .. })));
    // Inputs of the wrong shape, NaN, and an unfitted model.
    model.save(&path).unwrap();
    let model = load_model(&path).unwrap();
    let short = Array3::<f32>::zeros((2, 9, 3));
    assert!(matches!(
        model.predict(short.view(), short.view()),
        Err(Error::LengthMismatch { .. })
    ));
    let mut nan = Array3::<f32>::zeros((2, 10, 3));
    nan[[1, 4, 2]] = f32::NAN;
    assert!(matches!(
        model.predict(nan.view(), nan.view()),
        Err(Error::NotFinite { .. })
    ));
    let fresh = small_whole();
    let zeros = Array3::<f32>::zeros((1, 10, 3));
    assert!(matches!(
        fresh.predict(zeros.view(), zeros.view()),
        Err(Error::NotFitted(_))
    ));
    assert!(matches!(
        fresh.save(&dir.join("unfitted")),
        Err(Error::NotFitted(_))
    ));
    assert!(matches!(
        JointWise::new(
            3,
            JointWiseConfig {
                window: 0,
                ..JointWiseConfig::default()
            }
        ),
        Err(Error::InvalidSetting { .. })
    ));
    assert!("linear".parse::<dex_ndm::ModelKind>().is_err());
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dex-ndm-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
