//! One tick of a LEAP Hand scene logged: links, an object, 16 joint pairs.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};
use dex_core::HandModel;
use dex_rerun::{Primitive, Recorder, Rgba, SceneSink};
use dex_sim::{MockSimulator, ObjectSpec, SimConfig, Simulator};
use nalgebra::{Isometry3, Point3};

/// Drops every entry: the recorder's own cost (a `MemorySink` would grow without end).
#[derive(Clone)]
struct Discard;

impl SceneSink for Discard {
    fn set_time(&mut self, _: i64, _: f64) {}
    fn log_static_shapes(&mut self, _: &str, _: &[Primitive], _: Rgba) -> dex_rerun::Result<()> {
        Ok(())
    }
    fn log_pose(&mut self, _: &str, p: &Isometry3<f64>) -> dex_rerun::Result<()> {
        std::hint::black_box(p);
        Ok(())
    }
    fn log_points3d(
        &mut self,
        _: &str,
        _: &[Point3<f64>],
        _: f32,
        _: Rgba,
    ) -> dex_rerun::Result<()> {
        Ok(())
    }
    fn log_scalar(&mut self, _: &str, v: f64) -> dex_rerun::Result<()> {
        std::hint::black_box(v);
        Ok(())
    }
    fn log_pinhole(&mut self, _: &str, _: &dex_core::CameraIntrinsics) -> dex_rerun::Result<()> {
        Ok(())
    }
    fn log_gray_image(&mut self, _: &str, _: usize, _: usize, _: &[u8]) -> dex_rerun::Result<()> {
        Ok(())
    }
    fn log_points2d(&mut self, _: &str, _: &[[f32; 2]], _: f32, _: Rgba) -> dex_rerun::Result<()> {
        Ok(())
    }
    fn fork(&self) -> Box<dyn SceneSink> {
        Box::new(self.clone())
    }
    fn flush(&mut self) -> dex_rerun::Result<()> {
        Ok(())
    }
}

fn tick(c: &mut Criterion) {
    let model = HandModel::leap_right();
    let Ok(mut sim) = MockSimulator::new(model.clone(), SimConfig::default()) else {
        return;
    };
    if sim
        .set_objects(
            &[ObjectSpec::cube(0.04, 0.05)],
            &[Isometry3::translation(0.0, 0.0, 0.1)],
        )
        .is_err()
    {
        return;
    }
    let Ok(mut rec) = Recorder::new(Box::new(Discard), &model) else {
        return;
    };
    let mut k = 0i64;
    c.bench_function("recorder/leap_tick_paths", |b| {
        b.iter(|| {
            k += 1;
            rec.set_time(k, k as f64 * 0.02);
            rec.log_simulator(&sim)
        })
    });
    #[cfg(feature = "rerun")]
    {
        let path = std::env::temp_dir().join("dex-rerun-bench.rrd");
        let Ok(sink) = dex_rerun::RerunSink::create("dex-bench", &path) else {
            return;
        };
        let Ok(mut rec) = Recorder::new(Box::new(sink), &model) else {
            return;
        };
        c.bench_function("recorder/leap_tick_rrd", |b| {
            b.iter(|| {
                k += 1;
                rec.set_time(k, k as f64 * 0.02);
                rec.log_simulator(&sim)
            })
        });
        let _ = std::fs::remove_file(path);
    }
}

criterion_group!(benches, tick);
criterion_main!(benches);
