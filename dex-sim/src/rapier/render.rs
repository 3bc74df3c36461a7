//! Rendering: one ray per pixel against the scene's colliders, rows in parallel; depth,
//! segmentation and a textured grey image from the same ray.

use rapier3d::prelude::*;
use rayon::prelude::*;

use nalgebra::Point3;

use super::build;
use super::world::{RapierSim, from_pose, from_vec, vec3};
use crate::camera::{Camera, DepthFrame, LABEL_HAND, LABEL_NONE, object_label};
use crate::error::Result;
use crate::simulator::BodyRef;
use crate::texture::{self, Surface};

/// Rows handed to one rayon task (each task builds its own query pipeline, which is cheap
/// and not shareable across threads).
const ROWS_PER_TASK: usize = 8;

pub(crate) fn render_depth(sim: &RapierSim, camera: &Camera) -> Result<DepthFrame> {
    let (w, h) = camera.render_size()?;
    let mut depth = vec![0f32; w * h];
    let mut labels = vec![LABEL_NONE; w * h];
    let mut gray = vec![texture::BACKGROUND_GRAY; w * h];
    let world = &sim.world;
    let ground = sim.ground;
    let origin = vec3(&camera.pose.translation.vector);
    let rot = camera.pose.rotation;
    let max_toi = camera.max_depth as f32;
    depth
        .par_chunks_mut(w * ROWS_PER_TASK)
        .zip(labels.par_chunks_mut(w * ROWS_PER_TASK))
        .zip(gray.par_chunks_mut(w * ROWS_PER_TASK))
        .enumerate()
        .for_each(|(chunk, ((depth_rows, label_rows), gray_rows))| {
            // The ground and an enclosure's walls (colliders of no body) are not drawn.
            let drawn = |_: ColliderHandle, c: &Collider| c.parent().is_some();
            let mut filter = QueryFilter::default().predicate(&drawn);
            if let Some(g) = ground {
                filter = filter.exclude_collider(g);
            }
            let query = world.broad_phase.as_query_pipeline(
                world.narrow_phase.query_dispatcher(),
                &world.bodies,
                &world.colliders,
                filter,
            );
            let rows = depth_rows
                .iter_mut()
                .zip(label_rows.iter_mut())
                .zip(gray_rows.iter_mut());
            for (i, ((d, l), g)) in rows.enumerate() {
                let v = chunk * ROWS_PER_TASK + i / w;
                let u = i % w;
                let (dir_cam, z_per_len) = camera.ray_direction(u, v);
                let dir = rot * dir_cam;
                let ray = Ray::new(origin, vec3(&dir));
                let Some((handle, hit)) = query.cast_ray_and_get_normal(&ray, max_toi, true) else {
                    continue;
                };
                let toi = f64::from(hit.time_of_impact);
                *d = (toi * z_per_len) as f32;
                let Some(collider) = world.colliders.get(handle) else {
                    continue;
                };
                let surface = match build::decode_user_data(collider.user_data) {
                    BodyRef::Link(_) => {
                        *l = LABEL_HAND;
                        Surface::Hand
                    }
                    BodyRef::Object(k) => {
                        *l = object_label(k);
                        Surface::Object
                    }
                    BodyRef::Static => continue,
                };
                // The texture lives in the collider's frame, so it moves with the body.
                let world_point = Point3::from(camera.pose.translation.vector + dir * toi);
                let local = from_pose(collider.position()).inverse_transform_point(&world_point);
                let normal = from_vec(hit.normal);
                *g = texture::shade(texture::albedo(surface, &local), &normal, &dir);
            }
        });
    DepthFrame::from_buffers(camera, depth, labels, gray)
}
