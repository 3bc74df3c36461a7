//! DDPM's forward process, DDIM sampling and DexGen's guidance, on cases whose answer
//! is known.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_diffusion::{
    DdimSampler, Error, Guidance, MockPredictor, NoiseSchedule, add_noise, command_distance,
    command_distance_gradient, gaussian_noise,
};
use ndarray::{Array2, array};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[test]
fn forward_noising_matches_the_closed_form() {
    let s = NoiseSchedule::from_betas(vec![0.1, 0.5]).unwrap();
    let x0 = array![[1.0f32, -2.0]];
    let eps = array![[0.5f32, 0.25]];
    let xt = add_noise(&s, x0.view(), eps.view(), 1).unwrap();
    // ᾱ₁ = 0.45: √0.45·x₀ + √0.55·ε.
    let (a, b) = (0.45f32.sqrt(), 0.55f32.sqrt());
    assert!((xt[(0, 0)] - (a * 1.0 + b * 0.5)).abs() < 1e-6);
    assert!((xt[(0, 1)] - (a * -2.0 + b * 0.25)).abs() < 1e-6);
    assert!(add_noise(&s, x0.view(), eps.view(), 2).is_err());
    assert!(matches!(
        add_noise(&s, x0.view(), array![[0.0f32]].view(), 0),
        Err(Error::LengthMismatch { .. })
    ));
}

#[test]
fn ddim_with_a_perfect_predictor_and_no_guidance_recovers_the_data_point() {
    let s = NoiseSchedule::cosine(100).unwrap();
    let target = Array2::from_shape_fn((3, 48), |(r, c)| ((r * 48 + c) as f32 * 0.37).sin());
    for steps in [1, 8, 12] {
        let sampler = DdimSampler::new(s.clone(), steps).unwrap();
        let mut p = MockPredictor::exact(s.clone(), target.clone());
        let cond = Array2::zeros((3, 5));
        let x = sampler
            .sample(&mut p, cond.view(), 48, None, &mut rng(1))
            .unwrap();
        let err = (&x - &target).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(err < 1e-3, "{steps} steps: max error {err}");
        assert_eq!(p.calls, sampler.steps(), "one prediction per DDIM step");
    }
}

#[test]
fn the_guidance_gradient_matches_finite_differences() {
    let x = Array2::from_shape_fn((2, 12), |(r, c)| (r as f32 - c as f32) * 0.1);
    let cmd = Array2::from_shape_fn((2, 6), |(r, c)| (r + c) as f32 * 0.05);
    let g = command_distance_gradient(x.view(), cmd.view());
    let h = 1e-2f32;
    for r in 0..2 {
        for c in 0..12 {
            let mut plus = x.clone();
            plus[(r, c)] += h;
            let mut minus = x.clone();
            minus[(r, c)] -= h;
            let d = (command_distance(plus.view(), cmd.view())[r]
                - command_distance(minus.view(), cmd.view())[r])
                / (2.0 * f64::from(h));
            assert!(
                (d - f64::from(g[(r, c)])).abs() < 1e-3,
                "({r}, {c}): finite difference {d}, gradient {}",
                g[(r, c)]
            );
        }
    }
}

#[test]
fn strong_guidance_lands_on_the_command_and_none_leaves_the_prior() {
    let s = NoiseSchedule::cosine(100).unwrap();
    let sampler = DdimSampler::new(s.clone(), 8).unwrap();
    let target = Array2::from_elem((2, 48), 0.3f32);
    let cond = Array2::zeros((2, 4));
    let cmd = array![[0.01f32, 0.02, 0.03], [-0.01, 0.0, 0.01]]
        .broadcast((2, 3))
        .unwrap()
        .to_owned();
    let cmd = Array2::from_shape_fn((2, 24), |(r, c)| cmd[(r, c % 3)]);
    let sample = |strength: f64| {
        let mut p = MockPredictor::exact(s.clone(), target.clone());
        let g = Guidance {
            strength,
            command: cmd.view(),
        };
        sampler
            .sample(&mut p, cond.view(), 48, Some(g), &mut rng(2))
            .unwrap()
    };
    let free = sample(0.0);
    assert!(
        free.iter().all(|v| (v - 0.3).abs() < 1e-3),
        "α = 0 is the prior"
    );
    let pulled = sample(1e9);
    let d = command_distance(pulled.view(), cmd.view());
    assert!(
        d.iter().all(|d| *d < 1e-10),
        "α → ∞ follows the command: {d:?}"
    );
    // In between: closer to the command than the prior, monotone in α.
    let dist = |x: &Array2<f32>| command_distance(x.view(), cmd.view()).iter().sum::<f64>();
    let (d0, d1, d2) = (dist(&free), dist(&sample(0.5)), dist(&sample(5.0)));
    assert!(d0 > d1 && d1 > d2, "{d0} > {d1} > {d2}");
}

#[test]
fn the_same_seed_gives_the_same_samples() {
    let s = NoiseSchedule::cosine(50).unwrap();
    let sampler = DdimSampler::new(s.clone(), 10).unwrap();
    let cond = Array2::zeros((4, 3));
    let run = |seed| {
        let mut p = MockPredictor::zeros(s.clone());
        sampler
            .sample(&mut p, cond.view(), 48, None, &mut rng(seed))
            .unwrap()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    let noise = gaussian_noise(1000, 4, &mut rng(3));
    let mean = noise.iter().map(|v| f64::from(*v)).sum::<f64>() / 4000.0;
    let var = noise.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / 4000.0;
    assert!(mean.abs() < 0.06 && (var - 1.0).abs() < 0.1, "{mean} {var}");
}

#[test]
fn bad_commands_and_shapes_are_errors_not_nan_samples() {
    let s = NoiseSchedule::cosine(20).unwrap();
    let sampler = DdimSampler::new(s.clone(), 4).unwrap();
    let cond = Array2::zeros((2, 3));
    let mut p = MockPredictor::zeros(s.clone());
    let mut nan = Array2::zeros((2, 24));
    nan[(1, 5)] = f32::NAN;
    let g = Guidance {
        strength: 1.0,
        command: nan.view(),
    };
    assert!(matches!(
        sampler.sample(&mut p, cond.view(), 48, Some(g), &mut rng(0)),
        Err(Error::NotFinite {
            what: "command",
            ..
        })
    ));
    let narrow = Array2::zeros((2, 5));
    let g = Guidance {
        strength: 1.0,
        command: narrow.view(),
    };
    assert!(matches!(
        sampler.sample(&mut p, cond.view(), 48, Some(g), &mut rng(0)),
        Err(Error::LengthMismatch { .. })
    ));
    let ok = Array2::zeros((2, 24));
    let g = Guidance {
        strength: -1.0,
        command: ok.view(),
    };
    assert!(matches!(
        sampler.sample(&mut p, cond.view(), 48, Some(g), &mut rng(0)),
        Err(Error::InvalidSetting { .. })
    ));
    let one_row = Array2::zeros((1, 24));
    let g = Guidance {
        strength: 1.0,
        command: one_row.view(),
    };
    assert!(
        sampler
            .sample(&mut p, cond.view(), 48, Some(g), &mut rng(0))
            .is_err()
    );
    assert!(DdimSampler::new(s, 21).is_err());
}

#[test]
fn the_clip_bounds_every_denoised_estimate() {
    let s = NoiseSchedule::cosine(30).unwrap();
    let sampler = DdimSampler::new(s.clone(), 5)
        .unwrap()
        .with_clip(0.5)
        .unwrap();
    let target = Array2::from_elem((2, 6), 3.0f32);
    let mut p = MockPredictor::exact(s.clone(), target);
    let x = sampler
        .sample(&mut p, Array2::zeros((2, 1)).view(), 6, None, &mut rng(5))
        .unwrap();
    assert!(x.iter().all(|v| *v <= 0.5 + 1e-6), "{x:?}");
    assert!(
        DdimSampler::new(s.clone(), 5)
            .unwrap()
            .with_clip(0.0)
            .is_err()
    );
    assert!(DdimSampler::new(s, 5).unwrap().with_clip(f32::NAN).is_err());
}
