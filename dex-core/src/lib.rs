#![doc = include_str!("../README.md")]

mod camera;
mod error;
pub mod geometry;
mod kinematics;
mod model;
mod sincos;
mod types;

pub use camera::{CameraIntrinsics, DepthImage, PointCloud};
pub use error::{Error, Result};
pub use model::{
    Actuator, BuiltinHand, Frame, Geometry, HandModel, Inertial, Joint, JointDynamics, JointId,
    JointKind, JointLimits, Link, LinkId, Mimic, Shape,
};
pub use types::{FingertipKeypoints, JointState, JointTargets, PointTracks, Pose};

/// The embedded URDF text of the built-in hands.
pub mod hands {
    pub use crate::model::builtin::{ALLEGRO_RIGHT_URDF, LEAP_RIGHT_URDF};
}

/// Namespace URI of the `dex:` URDF extension elements (see [`HandModel`]).
pub use model::DEX_URDF_NAMESPACE;

// Foreign types that appear in our signatures.
pub use nalgebra;
pub use ndarray;

/// The names most programs need: `use dex_core::prelude::*;`.
pub mod prelude {
    pub use crate::geometry::{kabsch, rotation_distance, umeyama};
    pub use crate::{
        BuiltinHand, CameraIntrinsics, DepthImage, Error as CoreError, FingertipKeypoints,
        HandModel, JointState, JointTargets, LinkId, PointCloud, PointTracks, Pose,
    };
    pub use nalgebra::{Isometry3, Point3, UnitQuaternion, Vector3};
}
