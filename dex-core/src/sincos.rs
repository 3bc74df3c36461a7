//! `sin` and `cos` of one angle in a single call, for the forward-kinematics hot
//! loop, where the two separate libm calls cost about two thirds of an
//! evaluation.
//!
//! The argument is reduced to `r ∈ [-π/4, π/4]` by a multiple of π/2 (π/2 split
//! in two parts, Cody & Waite), then both functions are evaluated by the minimax
//! polynomials of fdlibm's `__kernel_sin` / `__kernel_cos` (Sun Microsystems,
//! 1993; coefficients reproduced below). Results stay within a few units in the
//! last place of libm's; arguments beyond `|x| > 2^19 π/2` (far outside any joint
//! range) go to libm.

// The coefficients are kept digit for digit as published.
#![allow(clippy::excessive_precision)]

/// First 33 bits of π/2, so that `n * PIO2_HI` is exact for `|n| < 2^20`.
const PIO2_HI: f64 = 1.570_796_326_734_125_614_17e0;
/// π/2 − `PIO2_HI`.
const PIO2_LO: f64 = 6.077_100_506_506_192_249_32e-11;

const S1: f64 = -1.666_666_666_666_663_243_48e-1;
const S2: f64 = 8.333_333_333_322_489_461_24e-3;
const S3: f64 = -1.984_126_982_985_794_931_34e-4;
const S4: f64 = 2.755_731_370_707_006_767_89e-6;
const S5: f64 = -2.505_076_025_340_686_341_95e-8;
const S6: f64 = 1.589_690_995_211_550_102_21e-10;

const C1: f64 = 4.166_666_666_666_660_190_37e-2;
const C2: f64 = -1.388_888_888_887_410_957_49e-3;
const C3: f64 = 2.480_158_728_947_672_941_78e-5;
const C4: f64 = -2.755_731_435_139_066_330_35e-7;
const C5: f64 = 2.087_572_321_298_174_827_90e-9;
const C6: f64 = -1.135_964_755_778_819_482_65e-11;

/// `(sin x, cos x)` for finite `x`.
#[inline(always)]
pub(crate) fn sin_cos(x: f64) -> (f64, f64) {
    // |x| ≤ 2^19 π/2, NaN excluded (the comparison is false for NaN).
    if x.is_nan() || x.abs() > 823_549.6 {
        return x.sin_cos();
    }
    // Round to the nearest integer by adding and removing 1.5 · 2^52 (pure
    // arithmetic: `f64::round` is a libm call on baseline x86-64).
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    let n = (x * std::f64::consts::FRAC_2_PI + SHIFTER) - SHIFTER;
    let r = (x - n * PIO2_HI) - n * PIO2_LO;
    let z = r * r;
    let s = r + r * z * (S1 + z * (S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)))));
    let hz = 0.5 * z;
    let w = 1.0 - hz;
    let c =
        w + (((1.0 - w) - hz) + z * z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6))))));
    match (n as i64) & 3 {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

#[cfg(test)]
mod tests {
    use super::sin_cos;

    #[test]
    fn agrees_with_libm_to_a_few_ulp() {
        let check = |x: f64| {
            let (s, c) = sin_cos(x);
            let err = (s - x.sin()).abs().max((c - x.cos()).abs());
            assert!(
                err <= 4.0 * f64::EPSILON,
                "x = {x}: sin {s} vs {}, cos {c} vs {}",
                x.sin(),
                x.cos()
            );
        };
        for i in -200_000..=200_000 {
            check(i as f64 * 1e-4); // ±20 rad, every 0.1 mrad
        }
        for k in -8..=8 {
            // Near multiples of π/4, where the quadrant changes.
            let base = k as f64 * std::f64::consts::FRAC_PI_4;
            for d in [-1e-12, -1e-15, 0.0, 1e-15, 1e-12] {
                check(base + d);
            }
        }
        for x in [1e5, -3.3e5, 8.2e5, 1e9, -1e12, 1e300] {
            check(x);
        }
    }

    #[test]
    fn exact_at_zero_and_passes_nan_through() {
        assert_eq!(sin_cos(0.0), (0.0, 1.0));
        let (s, c) = sin_cos(f64::NAN);
        assert!(s.is_nan() && c.is_nan());
    }
}
