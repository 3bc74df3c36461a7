//! [`DepthView`]: the depth camera of the tasks that observe depth images.

use nalgebra::{Point3, Vector3};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::camera::Camera;
use crate::error::{Error, Result};
use crate::simulator::{Simulator, open_configuration};

/// The depth camera of tasks that observe depth images, Squint's recipe by default:
/// render at 128 × 128, then area-downsample ("squint") by 8 to 16 × 16.
///
/// The camera looks at the open hand's fingertips from above and the side
/// ([`crate::Camera::overview`], 60° field of view). In the state vector the squinted
/// image is stored row by row as `depth / max_depth`, in `[0, 1]`, 0 where the ray
/// hits nothing within `max_depth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DepthView {
    /// Rendered image side (pixels; the image is square).
    pub render: usize,
    /// Area-downsampling factor; the observed image side is `render / squint`.
    pub squint: usize,
    /// Rays end at this distance (m); also the depth normalisation.
    pub max_depth: f64,
    /// Radius of the spheres that mark targets in the depth image (m); the spheres are
    /// drawn, not simulated: nothing collides with them. The default, 3 cm, makes a
    /// marker two to three squinted pixels wide: with the default view one pixel of the
    /// 16² image spans about 2 cm at the fingertips, so a marker of the success radius
    /// or smaller is averaged into one pixel by the squint.
    pub marker_radius: f64,
    /// Ablation: observe an all-zero image (nothing rendered), to measure what a policy
    /// learns without seeing.
    pub blind: bool,
}

impl Default for DepthView {
    fn default() -> Self {
        Self {
            // Squint (Almuzairee et al., 2025) renders 128² and downsamples to 16².
            render: 128,
            squint: 8,
            max_depth: 0.5,
            marker_radius: 0.03,
            blind: false,
        }
    }
}

impl DepthView {
    /// Side of the observed (squinted) image.
    pub fn side(&self) -> usize {
        self.render / self.squint.max(1)
    }

    /// The camera for `sim`'s hand: above the middle of the palm and the open hand's
    /// fingertips (hands are mounted palm up, world z up), looking down, tilted a
    /// little, so the fingers and the space above the palm fill the view.
    pub fn camera(&self, sim: &dyn Simulator) -> Result<Camera> {
        let hand = sim.config().hand_pose;
        let points = sim
            .model()
            .fingertip_positions(&open_configuration(sim.model()))?;
        let tips_centre = points
            .iter()
            .fold(Vector3::zeros(), |acc, p| acc + (hand * p).coords)
            / points.len().max(1) as f64;
        let centre: Point3<f64> = ((tips_centre + hand.translation.vector) / 2.0).into();
        let offset = Vector3::new(-0.03, -0.03, 0.3);
        let intrinsics =
            dex_core::CameraIntrinsics::from_fov_y(self.render, self.render, 60f64.to_radians())?;
        let mut camera = Camera::look_at(intrinsics, centre + offset, centre, Vector3::x())?;
        camera.max_depth = self.max_depth;
        Ok(camera)
    }

    /// Renders `sim` through `camera` with `markers` drawn as spheres, squints, appends
    /// the image to `state` as `depth / max_depth` and returns it (m). With `blind` the
    /// image is all zeros and nothing is rendered.
    pub fn observe(
        &self,
        sim: &dyn Simulator,
        camera: &Camera,
        markers: &[Point3<f64>],
        state: &mut Vec<f32>,
    ) -> Result<Array2<f32>> {
        let depth = if self.blind {
            Array2::zeros((self.side(), self.side()))
        } else {
            let mut frame = sim.render_depth(camera)?;
            frame.draw_spheres(markers, self.marker_radius);
            frame.squint(self.squint)?.depth.view().to_owned()
        };
        let scale = (1.0 / self.max_depth) as f32;
        state.extend(depth.iter().map(|d| (d * scale).clamp(0.0, 1.0)));
        Ok(depth)
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Error::InvalidParameter {
            what: "depth_view",
            reason,
        };
        if self.render == 0 || self.squint == 0 || !self.render.is_multiple_of(self.squint) {
            return Err(bad(format!(
                "render ({}) and squint ({}) must be positive, squint dividing render",
                self.render, self.squint
            )));
        }
        if !(self.max_depth.is_finite() && self.max_depth > 0.0) {
            return Err(bad(format!(
                "max_depth must be positive, got {}",
                self.max_depth
            )));
        }
        if !(self.marker_radius.is_finite() && self.marker_radius > 0.0) {
            return Err(bad(format!(
                "marker_radius must be positive, got {}",
                self.marker_radius
            )));
        }
        Ok(())
    }
}
