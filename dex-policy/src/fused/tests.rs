//! Tests of the fused kernels against candle's unfused ops and finite differences.
//! Compiled only in tests: `mod.rs` declares this module under `#[cfg(test)]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::Conv2d;

use super::activation::*;
use super::conv::*;
use super::ops::*;

use super::pointwise::*;

use candle_core::Var;
use rand::{Rng, SeedableRng};

fn random(shape: &[usize], scale: f32, seed: u64) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn exp_matches_the_standard_library_over_its_range() {
    let mut worst = 0.0f64;
    let mut x = -87.0f32;
    while x <= 0.0 {
        let got = f64::from(exp_nonpositive(x));
        let want = f64::from(x).exp();
        worst = worst.max(((got - want) / want).abs());
        x += 1e-3;
    }
    assert!(worst < 3e-7, "worst relative error {worst}");
    assert_eq!(exp_nonpositive(0.0), 1.0);
    assert!(exp_nonpositive(-200.0) < 1e-37);
    assert!(exp_nonpositive(f32::NEG_INFINITY) < 1e-37);
    // Positive inputs are clamped to 0 (ELU never asks for them).
    assert_eq!(exp_nonpositive(3.0), 1.0);
}

#[test]
fn elu_matches_candle_and_keeps_nan() {
    let x = Tensor::new(
        &[
            -100.0f32,
            -20.0,
            -3.0,
            -1.0,
            -1e-3,
            -1e-7,
            0.0,
            1e-7,
            0.5,
            2.0,
            f32::NEG_INFINITY,
            f32::INFINITY,
        ],
        &Device::Cpu,
    )
    .unwrap();
    for alpha in [1.0, 0.5] {
        let ours = elu(&x, alpha).unwrap().to_vec1::<f32>().unwrap();
        let theirs = x.elu(alpha).unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            assert!(
                a == b || (a - b).abs() <= 3e-7 * b.abs().max(1e-3),
                "{a} vs {b}"
            );
        }
    }
    let nan = Tensor::new(&[f32::NAN, -1.0], &Device::Cpu).unwrap();
    let y = elu(&nan, 1.0).unwrap().to_vec1::<f32>().unwrap();
    assert!(y[0].is_nan());
    let x = Var::from_tensor(&nan).unwrap();
    let g = elu(x.as_tensor(), 1.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(g.get(&x).unwrap().to_vec1::<f32>().unwrap()[0].is_nan());
}

#[test]
fn relu_matches_candle_away_from_zero() {
    let x0 = random(&[6, 21], 2.0, 18);
    let w = random(&[6, 21], 1.0, 19);
    let x = Var::from_tensor(&x0).unwrap();
    let run = |f: &dyn Fn(&Tensor) -> Tensor| {
        let y = f(x.as_tensor());
        let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        (y, g.get(&x).unwrap().clone())
    };
    let (y1, g1) = run(&|x| relu(x).unwrap());
    let (y2, g2) = run(&|x| x.relu().unwrap());
    assert_eq!(max_abs_diff(&y1, &y2), 0.0);
    assert_eq!(max_abs_diff(&g1, &g2), 0.0);
    let y = relu(&Tensor::new(&[f32::NAN, -1.0, 0.0, 2.0], &Device::Cpu).unwrap())
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(y[0].is_nan());
    assert_eq!(&y[1..], &[0.0, 0.0, 2.0]);
}

#[test]
fn elu_backward_matches_candle_and_finite_differences() {
    let x0 = random(&[7, 33], 3.0, 1);
    let w = random(&[7, 33], 1.0, 2);
    let loss = |f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor| (f(x) * &w).unwrap().sum_all().unwrap();
    let ours = |x: &Tensor| elu(x, 1.0).unwrap();
    let theirs = |x: &Tensor| x.elu(1.0).unwrap();
    let x = Var::from_tensor(&x0).unwrap();
    let g_ours = loss(&ours, x.as_tensor())
        .backward()
        .unwrap()
        .get(&x)
        .unwrap()
        .clone();
    let g_theirs = loss(&theirs, x.as_tensor())
        .backward()
        .unwrap()
        .get(&x)
        .unwrap()
        .clone();
    assert!(max_abs_diff(&g_ours, &g_theirs) < 1e-6);
    // Central differences in f64 on a few elements.
    let xs = x0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let ws = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let gs = g_ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let f = |v: f64| if v > 0.0 { v } else { v.exp() - 1.0 };
    // Only element i's term of the loss changes with element i.
    let term = |i: usize, d: f64| f64::from(ws[i]) * f(f64::from(xs[i]) + d);
    assert_central_differences(&gs, &[0, 5, 40, 100, 230], 1e-4, 1e-4, term);
}

/// Asserts that `grad[i]` matches the central difference `(loss(i, h) −
/// loss(i, −h)) / 2h` within `tol` at every index of `at`, where `loss(i, d)` is
/// the loss with input element `i` moved by `d`.
fn assert_central_differences(
    grad: &[f32],
    at: &[usize],
    h: f64,
    tol: f64,
    loss: impl Fn(usize, f64) -> f64,
) {
    for &i in at {
        let fd = (loss(i, h) - loss(i, -h)) / (2.0 * h);
        let g = f64::from(grad[i]);
        assert!((fd - g).abs() < tol, "element {i}: {fd} vs {g}");
    }
}

#[test]
fn layer_norm_matches_the_primitive_op_version_forward_and_backward() {
    for shape in [vec![5, 16], vec![2, 3, 24]] {
        let width = *shape.last().unwrap();
        let x0 = (random(&shape, 2.0, 3) + 0.7).unwrap();
        let w = random(&shape, 1.0, 4);
        let gamma = Var::from_tensor(&(random(&[width], 0.5, 5) + 1.0).unwrap()).unwrap();
        let beta = Var::from_tensor(&random(&[width], 0.5, 6)).unwrap();
        let x = Var::from_tensor(&x0).unwrap();
        let run = |fused: bool| {
            let y = if fused {
                layer_norm(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-5).unwrap()
            } else {
                candle_nn::ops::layer_norm_slow(
                    x.as_tensor(),
                    gamma.as_tensor(),
                    beta.as_tensor(),
                    1e-5,
                )
                .unwrap()
            };
            let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let g = |v: &Var| grads.get(v).unwrap().clone();
            (y, g(&x), g(&gamma), g(&beta))
        };
        let (y1, dx1, dg1, db1) = run(true);
        let (y2, dx2, dg2, db2) = run(false);
        assert!(max_abs_diff(&y1, &y2) < 1e-5);
        assert!(max_abs_diff(&dx1, &dx2) < 1e-5);
        assert!(max_abs_diff(&dg1, &dg2) < 1e-5);
        assert!(max_abs_diff(&db1, &db2) < 1e-5);
    }
}

#[test]
fn layer_norm_gradient_matches_finite_differences() {
    let x0 = random(&[3, 8], 1.5, 7);
    let w = random(&[3, 8], 1.0, 8);
    let gamma = (random(&[8], 0.5, 9) + 1.0).unwrap();
    let beta = random(&[8], 0.5, 10);
    let x = Var::from_tensor(&x0).unwrap();
    let loss = |x: &Tensor| {
        (layer_norm(x, &gamma, &beta, 1e-5).unwrap() * &w)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let g = loss(x.as_tensor())
        .backward()
        .unwrap()
        .get(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let xs = x0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for i in [0, 3, 9, 17, 23] {
        let h = 1e-2f32;
        let eval = |d: f32| {
            let mut v = xs.clone();
            v[i] += d;
            let t = Tensor::from_vec(v, (3, 8), &Device::Cpu).unwrap();
            loss(&t).to_scalar::<f32>().unwrap()
        };
        let fd = (eval(h) - eval(-h)) / (2.0 * h);
        assert!((fd - g[i]).abs() < 2e-3, "element {i}: {fd} vs {}", g[i]);
    }
}

#[test]
fn layer_norm_takes_non_contiguous_input_and_refuses_wrong_widths() {
    let x = random(&[16, 4], 1.0, 11).t().unwrap(); // 4 × 16, not contiguous
    let gamma = Tensor::ones(16, DType::F32, &Device::Cpu).unwrap();
    let beta = Tensor::zeros(16, DType::F32, &Device::Cpu).unwrap();
    let ours = layer_norm(&x, &gamma, &beta, 1e-5).unwrap();
    let theirs = candle_nn::ops::layer_norm_slow(&x, &gamma, &beta, 1e-5).unwrap();
    assert!(max_abs_diff(&ours, &theirs) < 1e-5);
    let short = Tensor::ones(15, DType::F32, &Device::Cpu).unwrap();
    let err = layer_norm(&x, &short, &beta, 1e-5).unwrap_err().to_string();
    assert!(err.contains("must both be [16]"), "{err}");
}

#[test]
fn linear_matches_candle_forward_and_backward_for_every_rank() {
    let (varmap, vb) = crate::vars::new_store();
    let layer = candle_nn::linear(12, 5, vb.pp("l")).unwrap();
    crate::vars::init_seeded(&varmap, 3, |_| 1.0).unwrap();
    // A non-zero bias, so that its gradient is not trivially compared.
    let bias = varmap.data().lock().unwrap()["l.bias"].clone();
    bias.set(&random(&[5], 1.0, 13)).unwrap();
    for shape in [vec![9, 12], vec![2, 4, 12], vec![2, 3, 2, 12]] {
        let x0 = random(&shape, 1.0, 14);
        let mut w_shape = shape.clone();
        *w_shape.last_mut().unwrap() = 5;
        let w = random(&w_shape, 1.0, 15);
        let x = Var::from_tensor(&x0).unwrap();
        let run = |fused: bool| {
            let y = if fused {
                linear(x.as_tensor(), &layer).unwrap()
            } else {
                layer.forward(x.as_tensor()).unwrap()
            };
            let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let vars = varmap.all_vars();
            let mut g: Vec<Tensor> = vars.iter().map(|v| grads.get(v).unwrap().clone()).collect();
            g.push(grads.get(&x).unwrap().clone());
            (y, g)
        };
        let (y1, g1) = run(true);
        let (y2, g2) = run(false);
        assert_eq!(y1.dims(), y2.dims());
        assert!(max_abs_diff(&y1, &y2) < 1e-5, "{shape:?}");
        for (a, b) in g1.iter().zip(&g2) {
            assert!(max_abs_diff(a, b) < 1e-4, "{shape:?}");
        }
    }
    // An input that needs no gradient (the first layer's observations): the
    // parameters' gradients are the same.
    let x0 = random(&[9, 12], 1.0, 17);
    let w = random(&[9, 5], 1.0, 18);
    let grads = |y: Tensor| {
        let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        varmap
            .all_vars()
            .iter()
            .map(|v| g.get(v).unwrap().clone())
            .collect::<Vec<_>>()
    };
    let g1 = grads(linear(&x0, &layer).unwrap());
    let g2 = grads(layer.forward(&x0).unwrap());
    for (a, b) in g1.iter().zip(&g2) {
        assert!(max_abs_diff(a, b) < 1e-4);
    }
    let wrong = random(&[3, 7], 1.0, 16);
    let err = linear(&wrong, &layer).unwrap_err().to_string();
    assert!(err.contains("weight [5, 12]"), "{err}");
}

#[test]
fn fused_activations_match_the_separate_ops_forward_and_backward() {
    let (varmap, vb) = crate::vars::new_store();
    let layer = candle_nn::linear(10, 14, vb.pp("l")).unwrap();
    let gamma = vb
        .get_with_hints(14, "g", candle_nn::Init::Const(1.0))
        .unwrap();
    let beta = vb
        .get_with_hints(14, "b", candle_nn::Init::Const(0.0))
        .unwrap();
    crate::vars::init_seeded(&varmap, 5, |_| 1.0).unwrap();
    varmap.data().lock().unwrap()["b"]
        .set(&random(&[14], 0.5, 20))
        .unwrap();
    let x0 = random(&[2, 6, 10], 2.0, 21);
    let w = random(&[2, 6, 14], 1.0, 22);
    let x = Var::from_tensor(&x0).unwrap();
    for act in [Activation::Elu, Activation::Relu, Activation::Tanh] {
        for norm in [false, true] {
            let run = |fused: bool| {
                let y = match (fused, norm) {
                    (true, false) => hidden_layer(x.as_tensor(), &layer, None, Some(act)),
                    (true, true) => {
                        let norm = Some((&gamma, &beta));
                        hidden_layer(x.as_tensor(), &layer, norm, Some(act))
                    }
                    (false, false) => act.apply(&layer.forward(x.as_tensor()).unwrap()),
                    (false, true) => {
                        let z = layer.forward(x.as_tensor()).unwrap();
                        let n = candle_nn::ops::layer_norm_slow(&z, &gamma, &beta, 1e-5);
                        act.apply(&n.unwrap())
                    }
                }
                .unwrap();
                let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
                // Name order; gamma and beta have no gradient without the norm.
                let data = varmap.data().lock().unwrap();
                let mut names: Vec<&String> = data.keys().collect();
                names.sort();
                let mut all: Vec<Option<Tensor>> =
                    names.iter().map(|n| g.get(&data[*n]).cloned()).collect();
                all.push(g.get(&x).cloned());
                (y, all)
            };
            let (y1, g1) = run(true);
            let (y2, g2) = run(false);
            assert!(max_abs_diff(&y1, &y2) < 1e-5, "{act:?} norm {norm}");
            for (a, b) in g1.iter().zip(&g2) {
                match (a, b) {
                    (Some(a), Some(b)) => {
                        assert!(max_abs_diff(a, b) < 1e-4, "{act:?} norm {norm}")
                    }
                    (None, None) => {}
                    _ => panic!("a gradient on one side only ({act:?}, norm {norm})"),
                }
            }
        }
    }
}

#[test]
fn other_dtypes_fall_back_to_candle() {
    let x = random(&[4, 8], 2.0, 12).to_dtype(DType::F64).unwrap();
    let a = elu(&x, 1.0).unwrap();
    let b = x.elu(1.0).unwrap();
    assert_eq!(a.to_vec2::<f64>().unwrap(), b.to_vec2::<f64>().unwrap());
}

/// A conv layer with random weights: `[out, in, k, k]`, stride `s`.
fn conv_layer(out: usize, inp: usize, k: usize, s: usize, seed: u64) -> (Var, Var, Conv2d) {
    let w = Var::from_tensor(&random(&[out, inp, k, k], 0.5, seed)).unwrap();
    let b = Var::from_tensor(&random(&[out], 0.5, seed + 1)).unwrap();
    let cfg = candle_nn::Conv2dConfig {
        stride: s,
        ..Default::default()
    };
    let conv = Conv2d::new(w.as_tensor().clone(), Some(b.as_tensor().clone()), cfg);
    (w, b, conv)
}

#[test]
fn conv_matches_candle_values_and_gradients() {
    // (batch, channels, size, outputs, kernel, stride, activation)
    let cases = [
        (3, 1, 16, 8, 4, 2, Some(Activation::Relu)),
        (2, 3, 7, 5, 3, 1, Some(Activation::Elu)),
        (2, 4, 9, 6, 3, 2, None),
        (1, 2, 5, 3, 5, 1, Some(Activation::Tanh)),
    ];
    for (i, &(b, c, n, o, k, s, act)) in cases.iter().enumerate() {
        let seed = 100 + 10 * i as u64;
        let (w, bias, conv) = conv_layer(o, c, k, s, seed);
        let x = Var::from_tensor(&random(&[b, c, n, n], 1.0, seed + 2)).unwrap();
        let m = (n - k) / s + 1;
        let probe = random(&[b, o, m, m], 1.0, seed + 3);
        let run = |f: &dyn Fn(&Tensor) -> Tensor| {
            let y = f(x.as_tensor());
            let g = (&y * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let get = |v: &Var| g.get(v).unwrap().clone();
            (y, get(&x), get(&w), get(&bias))
        };
        let ours = run(&|x| {
            let nhwc = x.permute((0, 2, 3, 1)).unwrap();
            conv2d_nhwc(&nhwc, &conv, act)
                .unwrap()
                .permute((0, 3, 1, 2))
                .unwrap()
        });
        let theirs = run(&|x| then_activate(conv.forward(x).unwrap(), act).unwrap());
        for (what, a, t) in [
            ("output", &ours.0, &theirs.0),
            ("dx", &ours.1, &theirs.1),
            ("dw", &ours.2, &theirs.2),
            ("db", &ours.3, &theirs.3),
        ] {
            assert_eq!(a.dims(), t.dims(), "case {i} {what}");
            let d = max_abs_diff(a, t);
            assert!(d < 2e-4, "case {i} {what}: differs by {d}");
        }
    }
}

#[test]
fn conv_input_gradient_matches_finite_differences() {
    let (_, _, conv) = conv_layer(2, 2, 3, 2, 7);
    let x0 = random(&[1, 7, 7, 2], 1.0, 9);
    let probe = random(&[1, 3, 3, 2], 1.0, 10);
    let loss = |x: &Tensor| {
        let y = conv2d_nhwc(x, &conv, Some(Activation::Elu)).unwrap();
        (y * &probe).unwrap().sum_all().unwrap()
    };
    let x = Var::from_tensor(&x0).unwrap();
    let g = loss(x.as_tensor()).backward().unwrap();
    let g = g
        .get(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let x64 = x0.to_dtype(DType::F64).unwrap();
    let xs = x64.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    // The same convolution in f64 (which `conv2d_nhwc` leaves to candle's own
    // convolution), for central differences.
    let conv64 = Conv2d::new(
        conv.weight().to_dtype(DType::F64).unwrap(),
        conv.bias().map(|b| b.to_dtype(DType::F64).unwrap()),
        *conv.config(),
    );
    let probe64 = probe.to_dtype(DType::F64).unwrap();
    let moved = |i: usize, d: f64| -> f64 {
        let mut v = xs.clone();
        v[i] += d;
        let x = Tensor::from_vec(v, (1, 7, 7, 2), &Device::Cpu).unwrap();
        let y = conv2d_nhwc(&x, &conv64, Some(Activation::Elu)).unwrap();
        (y * &probe64)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    // Corner, edge and inner pixels: in one patch, in two (stride 2, kernel 3), in four.
    let at = [0, 1, 13, 14, 48, 60, 97];
    assert_central_differences(&g, &at, 1e-5, 1e-3, moved);
}

#[test]
fn conv_rejects_wrong_channels_and_leftover_pixels() {
    let (_, _, conv) = conv_layer(2, 3, 3, 2, 1);
    let wrong_channels = random(&[1, 7, 7, 2], 1.0, 2);
    assert!(conv2d_nhwc(&wrong_channels, &conv, None).is_err());
    let leftover = random(&[1, 8, 8, 3], 1.0, 3);
    let e = conv2d_nhwc(&leftover, &conv, None).unwrap_err().to_string();
    assert!(e.contains("stride"), "{e}");
    let small = random(&[1, 2, 2, 3], 1.0, 4);
    assert!(conv2d_nhwc(&small, &conv, None).is_err());
    let rank3 = random(&[7, 7, 3], 1.0, 5);
    assert!(conv2d_nhwc(&rank3, &conv, None).is_err());
    let (_, _, stride0) = conv_layer(2, 3, 3, 0, 6);
    let e = conv2d_nhwc(&random(&[1, 7, 7, 3], 1.0, 7), &stride0, None).unwrap_err();
    assert!(e.to_string().contains("stride 0"), "{e}");
}

#[test]
fn grouped_linear_matches_candle_forward_and_backward() {
    use super::grouped::grouped_linear;
    for act in [None, Some(Activation::Relu), Some(Activation::Elu)] {
        let x = Var::from_tensor(&random(&[3, 7, 5], 1.0, 21)).unwrap();
        let w = Var::from_tensor(&random(&[3, 5, 4], 1.0, 22)).unwrap();
        let b = Var::from_tensor(&random(&[3, 1, 4], 1.0, 23)).unwrap();
        let probe = random(&[3, 7, 4], 1.0, 24);
        let run = |fused: bool| {
            let y = if fused {
                grouped_linear(x.as_tensor(), w.as_tensor(), b.as_tensor(), act).unwrap()
            } else {
                let z = x
                    .as_tensor()
                    .matmul(w.as_tensor())
                    .unwrap()
                    .broadcast_add(b.as_tensor())
                    .unwrap();
                match act {
                    Some(a) => a.apply(&z).unwrap(),
                    None => z,
                }
            };
            let grads = (&y * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g: Vec<Tensor> = [&x, &w, &b]
                .iter()
                .map(|v| grads.get(v).unwrap().clone())
                .collect();
            (y, g)
        };
        let (y1, g1) = run(true);
        let (y2, g2) = run(false);
        assert!(max_abs_diff(&y1, &y2) < 1e-5, "{act:?}");
        for (a, b) in g1.iter().zip(&g2) {
            assert_eq!(a.dims(), b.dims());
            assert!(max_abs_diff(a, b) < 1e-4, "{act:?}");
        }
    }
    let err = grouped_linear(
        &random(&[2, 3, 4], 1.0, 1),
        &random(&[3, 4, 5], 1.0, 2),
        &random(&[2, 1, 5], 1.0, 3),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("grouped linear"), "{err}");
}
