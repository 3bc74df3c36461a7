//! Turning a `HandModel` and objects into rapier bodies, colliders and multibody joints.

use dex_core::{HandModel, JointKind, LinkId, Shape};
use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use rapier3d::prelude::*;

use super::world::{BACKEND, Dof, LinkBody, RapierSim, WristDrive, joint_axis, to_pose, vec3};
use crate::error::{Error, Result};
use crate::object::{ObjectShape, ObjectSpec};
use crate::simulator::{BodyRef, SimConfig, nominal_gains, open_configuration};
use crate::wrist::WristConfig;

/// Collision group of objects.
const OBJECT_GROUP: u32 = 1;
/// Collision group of the static environment.
const STATIC_GROUP: u32 = 1 << 31;
/// Hand bodies use bits 1..=30; bodies beyond share bit 30 and do not collide with the hand.
const MAX_HAND_BITS: usize = 30;

/// Rapier's length unit (m): the scale of its tolerances and margins.
const LENGTH_UNIT: f32 = 0.1;

const TAG_LINK: u128 = 0;
const TAG_OBJECT: u128 = 1;
const TAG_STATIC: u128 = 2;

fn encode(tag: u128, index: usize) -> u128 {
    (tag << 64) | index as u128
}

pub(crate) fn decode_user_data(data: u128) -> BodyRef {
    let index = (data & u128::from(u64::MAX)) as usize;
    match data >> 64 {
        TAG_LINK => BodyRef::Link(index),
        TAG_OBJECT => BodyRef::Object(index),
        _ => BodyRef::Static,
    }
}

/// A rotation taking the x axis onto `axis`.
fn x_to(axis: &Vector3<f64>) -> UnitQuaternion<f64> {
    UnitQuaternion::rotation_between(&Vector3::x(), axis).unwrap_or_else(|| {
        // axis = -x: half a turn about z.
        UnitQuaternion::from_axis_angle(&Vector3::z_axis(), std::f64::consts::PI)
    })
}

/// The locked axes and the free axis of a one-axis joint along (prismatic) or about
/// its frame's x axis.
fn one_axis(prismatic: bool) -> (JointAxesMask, JointAxis) {
    let mask = if prismatic {
        JointAxesMask::LOCKED_PRISMATIC_AXES
    } else {
        JointAxesMask::LOCKED_REVOLUTE_AXES
    };
    (mask, joint_axis(prismatic).0)
}

/// Builds the hand (no objects yet).
pub(crate) fn build_hand(model: HandModel, config: SimConfig) -> Result<RapierSim> {
    if let Some(j) = model.joints().iter().find(|j| j.mimic.is_some()) {
        return Err(Error::Unsupported {
            backend: BACKEND,
            what: format!("mimic joint `{}`", j.name),
        });
    }
    let mut world = PhysicsWorld::new();
    world.gravity = vec3(&config.gravity);
    let ip = &mut world.integration_parameters;
    ip.dt = config.dt as f32;
    ip.num_solver_iterations = config.solver_iterations;
    ip.contact_softness.natural_frequency = config.contact_frequency as f32;
    // Hand-scale tolerances: rapier's defaults assume metre-sized bodies (a 4 cm broad-phase
    // margin makes every finger a collision candidate of every other one).
    ip.length_unit = LENGTH_UNIT;
    ip.normalized_prediction_distance =
        (config.prediction_distance / f64::from(LENGTH_UNIT)) as f32;

    let n_links = model.links().len();
    let root = model.root();
    // Body of each link (index into `bodies`), link offset in that body, and for each body
    // its parent body (None for the palm) and whether it is the palm.
    let mut link_body: Vec<Option<(usize, Isometry3<f64>)>> = vec![None; n_links];
    let mut body_links: Vec<Vec<usize>> = vec![vec![root.0]];
    let mut body_parent: Vec<Option<usize>> = vec![None];
    let mut body_world: Vec<Isometry3<f64>> = vec![config.hand_pose];
    // (joint index, parent body, child body) of movable joints.
    let mut movable: Vec<(usize, usize, usize)> = Vec::new();
    link_body[root.0] = Some((0, Isometry3::identity()));
    let mut stack = vec![root];
    while let Some(link) = stack.pop() {
        let Some((body, offset)) = link_body[link.0] else {
            continue;
        };
        for jid in &model.link(link).child_joints {
            let j = model.joint(*jid);
            let child = j.child;
            if j.kind == JointKind::Fixed {
                link_body[child.0] = Some((body, offset * j.origin));
                body_links[body].push(child.0);
            } else {
                let b = body_links.len();
                body_links.push(vec![child.0]);
                body_parent.push(Some(body));
                body_world.push(body_world[body] * offset * j.origin);
                link_body[child.0] = Some((b, Isometry3::identity()));
                movable.push((jid.0, body, b));
            }
            stack.push(child);
        }
    }

    // Collision groups: bit 1 + body index (capped), filters from exclusions.
    let n_bodies = body_links.len();
    let bit = |b: usize| 1u32 << (1 + b.min(MAX_HAND_BITS - 1));
    let all_hand: u32 = (0..n_bodies.min(MAX_HAND_BITS)).fold(0, |acc, b| acc | bit(b));
    let mut filters: Vec<u32> = (0..n_bodies)
        .map(|b| {
            let hand = if config.hand_self_collision && b < MAX_HAND_BITS - 1 {
                all_hand & !bit(b) & !(1 << MAX_HAND_BITS)
            } else {
                0
            };
            // With a table the hand meets the static group (the ground and walls keep the
            // hand out of their own filters).
            let table = if config.table.is_some() {
                STATIC_GROUP
            } else {
                0
            };
            OBJECT_GROUP | hand | table
        })
        .collect();
    let exclude = |a: usize, b: usize, filters: &mut Vec<u32>| {
        filters[a] &= !bit(b);
        filters[b] &= !bit(a);
    };
    for (b, parent) in body_parent.iter().enumerate() {
        if let Some(p) = parent {
            exclude(b, *p, &mut filters);
        }
    }
    // Bodies of one finger (one multibody) never collide: self contacts are off.
    let finger = |mut b: usize| {
        while let Some(Some(p)) = body_parent.get(b) {
            if *p == 0 {
                break;
            }
            b = *p;
        }
        b
    };
    for a in 1..n_bodies {
        for b in a + 1..n_bodies {
            if finger(a) == finger(b) {
                exclude(a, b, &mut filters);
            }
        }
    }
    for (l1, l2) in model.contact_excludes() {
        if let (Some((a, _)), Some((b, _))) = (link_body[l1.0], link_body[l2.0]) {
            exclude(a, b, &mut filters);
        }
    }

    // Rigid bodies.
    let mut handles = Vec::with_capacity(n_bodies);
    let mut warnings = Vec::new();
    for b in 0..n_bodies {
        let builder = if b == 0 && config.wrist.is_none() {
            RigidBodyBuilder::fixed()
        } else {
            let mprops = body_mass_properties(&model, &body_links[b], &link_body);
            RigidBodyBuilder::dynamic()
                .additional_mass_properties(mprops)
                .can_sleep(false)
        };
        let h = world.insert_body(builder.pose(to_pose(&body_world[b])).build());
        handles.push(h);
        for &l in &body_links[b] {
            let Some((_, offset)) = link_body[l] else {
                continue;
            };
            for g in &model.link(LinkId(l)).collisions {
                let Some((shape, local)) = hand_shape(&g.shape) else {
                    warnings.push(format!(
                        "link `{}`: {} collision shape skipped (meshes are not loaded)",
                        model.link(LinkId(l)).name,
                        g.shape.kind()
                    ));
                    continue;
                };
                let collider = ColliderBuilder::new(shape)
                    .position(to_pose(&(offset * g.origin * local)))
                    .density(0.0)
                    .friction(config.hand_friction as f32)
                    .collision_groups(InteractionGroups::new(
                        Group::from_bits_retain(bit(b)),
                        Group::from_bits_retain(filters[b]),
                        InteractionTestMode::And,
                    ))
                    .user_data(encode(TAG_LINK, l))
                    .build();
                world.insert_collider(collider, Some(h));
            }
        }
    }

    // The wrist: a chain of three prismatic and three revolute joints from a fixed base
    // at `hand_pose` to the palm, so the whole hand is one multibody on it.
    let wrist = match &config.wrist {
        Some(w) => Some(build_wrist(&mut world, w, &config.hand_pose, handles[0])?),
        None => None,
    };

    // Multibody joints; without a wrist a fixed mount per joint on the palm.
    let mut dof_of_joint: Vec<Option<Dof>> = vec![None; model.dof()];
    for (jidx, parent_body, child_body) in &movable {
        let j = &model.joints()[*jidx];
        // The mount sits at the palm's pose, so both parents share the parent body's frame.
        let parent_handle = if *parent_body == 0 && wrist.is_none() {
            world.insert_body(
                RigidBodyBuilder::fixed()
                    .pose(to_pose(&body_world[0]))
                    .build(),
            )
        } else {
            handles[*parent_body]
        };
        let parent_link_offset = link_body[j.parent.0].map_or(Isometry3::identity(), |(_, o)| o);
        let frame = Isometry3::from_parts(Translation3::identity(), x_to(&j.axis));
        let local1 = parent_link_offset * j.origin * frame;
        let prismatic = j.kind == JointKind::Prismatic;
        let (mask, axis) = one_axis(prismatic);
        let (kp, kd) = nominal_gains(j);
        let effort = j
            .limits
            .map(|l| l.effort)
            .filter(|e| *e > 0.0)
            .unwrap_or(f64::MAX);
        let mut builder = GenericJointBuilder::new(mask)
            .local_frame1(to_pose(&local1))
            .local_frame2(to_pose(&frame))
            .contacts_enabled(false)
            .motor_model(axis, MotorModel::ForceBased)
            .motor_position(axis, 0.0, kp as f32, kd as f32)
            .motor_max_force(axis, effort.min(f64::from(f32::MAX)) as f32);
        if let Some(l) = j.limits
            && j.kind != JointKind::Continuous
        {
            builder = builder.limits(axis, [l.lower as f32, l.upper as f32]);
        }
        let handle = world
            .multibody_joints
            .insert(parent_handle, handles[*child_body], builder.build(), true)
            .ok_or_else(|| Error::Unsupported {
                backend: BACKEND,
                what: format!("joint `{}` closes a kinematic loop", j.name),
            })?;
        if let Some((mb, link_id)) = world.multibody_joints.get_mut(handle) {
            // One multibody per finger: its links never touch each other. On a wrist the
            // whole hand is one multibody and the collision groups filter the pairs.
            mb.set_self_contacts_enabled(wrist.is_some());
            if let Some(link) = mb.link(link_id) {
                let dof = link.assembly_id();
                mb.damping_mut()[dof] = j.dynamics.damping as f32;
                mb.frictions_mut()[dof] = j.dynamics.friction as f32;
            }
        }
        if let Some(d) = j.dof {
            dof_of_joint[d] = Some(Dof {
                joint: handle,
                prismatic,
                kp,
                kd,
                effort,
                feedforward: 0.0,
            });
        }
    }
    let dofs = dof_of_joint
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            d.ok_or_else(|| Error::Unsupported {
                backend: BACKEND,
                what: format!("degree of freedom {i} has no joint"),
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let links = link_body
        .iter()
        .map(|lb| {
            let (b, offset) = lb.unwrap_or((0, Isometry3::identity()));
            LinkBody {
                body: handles[b],
                offset,
            }
        })
        .collect();

    // Ground plane (objects only).
    let ground = world.insert_collider(
        ColliderBuilder::cuboid(10.0, 10.0, 0.5)
            .translation(Vector::new(0.0, 0.0, -0.5))
            .friction(0.8)
            .collision_groups(InteractionGroups::new(
                Group::from_bits_retain(STATIC_GROUP),
                Group::from_bits_retain(OBJECT_GROUP),
                InteractionTestMode::And,
            ))
            .user_data(encode(TAG_STATIC, 0))
            .build(),
        None,
    );

    // The table: a 5 cm slab on a fixed body, colliding with objects and the hand.
    if let Some(t) = &config.table {
        const HALF_THICKNESS: f64 = 0.025;
        let [x, y, z] = t.top_center;
        let body = world.insert_body(
            RigidBodyBuilder::fixed()
                .translation(vec3(&Vector3::new(x, y, z - HALF_THICKNESS)))
                .build(),
        );
        world.insert_collider(
            ColliderBuilder::cuboid(
                t.half_extents[0] as f32,
                t.half_extents[1] as f32,
                HALF_THICKNESS as f32,
            )
            .friction(t.friction as f32)
            .collision_groups(InteractionGroups::new(
                Group::from_bits_retain(STATIC_GROUP),
                Group::from_bits_retain(OBJECT_GROUP | all_hand),
                InteractionTestMode::And,
            ))
            .user_data(encode(TAG_STATIC, 0))
            .build(),
            Some(body),
        );
    }

    // The enclosure's walls (objects only), 2 cm thick, outside its box.
    if let Some(e) = &config.enclosure {
        let t = 0.01;
        let c = (e.min.coords + e.max.coords) / 2.0;
        let h = (e.max.coords - e.min.coords) / 2.0;
        for axis in 0..3 {
            for side in [-1.0, 1.0] {
                let mut half = h + Vector3::repeat(2.0 * t);
                half[axis] = t;
                let mut center = c;
                center[axis] += side * (h[axis] + t);
                world.insert_collider(
                    ColliderBuilder::cuboid(half.x as f32, half.y as f32, half.z as f32)
                        .translation(vec3(&center))
                        .friction(0.5)
                        .collision_groups(InteractionGroups::new(
                            Group::from_bits_retain(STATIC_GROUP),
                            Group::from_bits_retain(OBJECT_GROUP),
                            InteractionTestMode::And,
                        ))
                        .user_data(encode(TAG_STATIC, 0))
                        .build(),
                    None,
                );
            }
        }
    }

    let dof = model.dof();
    let mut sim = RapierSim {
        model,
        config,
        world,
        links,
        dofs,
        objects: Vec::new(),
        object_bodies: Vec::new(),
        ground: Some(ground),
        targets: vec![0.0; dof],
        time: 0.0,
        warnings,
        wrist,
    };
    let open = open_configuration(&sim.model);
    crate::Simulator::set_joint_positions(&mut sim, &open)?;
    Ok(sim)
}

/// Inserts the wrist's chain under `palm` (a dynamic body at `base`): a fixed base body,
/// five collider-less links of 50 g and the six joints (prismatic x, y, z of the base
/// frame, then revolute about z, y, x), each a force-based PD motor.
fn build_wrist(
    world: &mut PhysicsWorld,
    config: &WristConfig,
    base: &Isometry3<f64>,
    palm: RigidBodyHandle,
) -> Result<WristDrive> {
    let pose = to_pose(base);
    let mut bodies = vec![world.insert_body(RigidBodyBuilder::fixed().pose(pose).build())];
    for _ in 0..5 {
        let link = RigidBodyBuilder::dynamic()
            .pose(pose)
            .additional_mass_properties(MassProperties::new(
                Vector::ZERO,
                0.05,
                Vector::splat(1e-5),
            ))
            .can_sleep(false)
            .build();
        bodies.push(world.insert_body(link));
    }
    bodies.push(palm);
    let axes = [
        Vector3::x(),
        Vector3::y(),
        Vector3::z(),
        Vector3::z(),
        Vector3::y(),
        Vector3::x(),
    ];
    let mut joints = Vec::with_capacity(6);
    for (i, axis) in axes.iter().enumerate() {
        let linear = i < 3;
        let (mask, motor) = one_axis(linear);
        let k = usize::from(!linear);
        let frame = to_pose(&Isometry3::from_parts(Translation3::identity(), x_to(axis)));
        let joint = GenericJointBuilder::new(mask)
            .local_frame1(frame)
            .local_frame2(frame)
            .contacts_enabled(false)
            .motor_model(motor, MotorModel::ForceBased)
            .motor_position(
                motor,
                0.0,
                config.stiffness[k] as f32,
                config.damping[k] as f32,
            )
            .motor_max_force(motor, config.max_effort[k] as f32)
            .limits(motor, [config.lower[i] as f32, config.upper[i] as f32])
            .build();
        let h = world
            .multibody_joints
            .insert(bodies[i], bodies[i + 1], joint, true)
            .ok_or_else(|| Error::Unsupported {
                backend: BACKEND,
                what: "the wrist's joint chain".into(),
            })?;
        if let Some((mb, link_id)) = world.multibody_joints.get_mut(h)
            && let Some(link) = mb.link(link_id)
        {
            let dof = link.assembly_id();
            mb.damping_mut()[dof] = 0.0;
        }
        joints.push(h);
    }
    let joints: [MultibodyJointHandle; 6] = joints.try_into().map_err(|_| Error::Unsupported {
        backend: BACKEND,
        what: "the wrist's joint chain".into(),
    })?;
    Ok(WristDrive {
        joints,
        target: [0.0; 6],
        requested: [0.0; 6],
        velocity: [0.0; 6],
        joint_velocity: Vec::new(),
    })
}

/// The inertial properties of a body made of `links`, in the body frame.
fn body_mass_properties(
    model: &HandModel,
    links: &[usize],
    link_body: &[Option<(usize, Isometry3<f64>)>],
) -> MassProperties {
    let mut total = MassProperties::default();
    for &l in links {
        let Some(inertial) = &model.link(LinkId(l)).inertial else {
            continue;
        };
        let Some((_, offset)) = link_body[l] else {
            continue;
        };
        let m = inertial.inertia;
        let mat = Matrix::from_cols(
            vec3(&m.column(0).into_owned()),
            vec3(&m.column(1).into_owned()),
            vec3(&m.column(2).into_owned()),
        );
        let local = MassProperties::with_inertia_matrix(
            vec3(&inertial.com.coords),
            inertial.mass as f32,
            mat,
        );
        total += local.transform_by(&to_pose(&offset));
    }
    if total.mass() <= 0.0 {
        // A link without <inertial>: 1 g, the inertia of a 1 cm sphere.
        total = MassProperties::new(Vector::ZERO, 0.001, Vector::splat(4e-8));
    }
    total
}

/// A rapier shape for a URDF shape and the extra local rotation (cylinders are along y in
/// rapier, along z in URDF). `None` for meshes.
fn hand_shape(shape: &Shape) -> Option<(SharedShape, Isometry3<f64>)> {
    let z_up = Isometry3::rotation(Vector3::x() * std::f64::consts::FRAC_PI_2);
    Some(match shape {
        Shape::Box { half_extents: h } => (
            SharedShape::cuboid(h.x as f32, h.y as f32, h.z as f32),
            Isometry3::identity(),
        ),
        Shape::Sphere { radius } => (SharedShape::ball(*radius as f32), Isometry3::identity()),
        Shape::Cylinder { radius, length } => (
            SharedShape::cylinder((length / 2.0) as f32, *radius as f32),
            z_up,
        ),
        Shape::Capsule { radius, length } => (
            SharedShape::capsule_z((length / 2.0) as f32, *radius as f32),
            Isometry3::identity(),
        ),
        Shape::Mesh { .. } => return None,
    })
}

/// The collider of object `index`, in the object frame.
pub(crate) fn object_collider(object: &ObjectSpec, index: usize) -> Result<Collider> {
    let z_up = to_pose(&Isometry3::rotation(
        Vector3::x() * std::f64::consts::FRAC_PI_2,
    ));
    let builder = match &object.shape {
        ObjectShape::Box { half_extents: h } => {
            ColliderBuilder::cuboid(h[0] as f32, h[1] as f32, h[2] as f32)
        }
        ObjectShape::Sphere { radius } => ColliderBuilder::ball(*radius as f32),
        ObjectShape::Cylinder { radius, height } => {
            ColliderBuilder::cylinder((height / 2.0) as f32, *radius as f32).position(z_up)
        }
        ObjectShape::Capsule { radius, length } => {
            ColliderBuilder::capsule_z((length / 2.0) as f32, *radius as f32)
        }
        ObjectShape::ConvexHull { points } => {
            let pts: Vec<Vector> = points.iter().map(|p| vec3(&Vector3::from(*p))).collect();
            ColliderBuilder::convex_hull(&pts).ok_or_else(|| Error::InvalidObject {
                name: object.name.clone(),
                reason: "the convex hull of its points is degenerate".into(),
            })?
        }
    };
    Ok(builder
        .mass(object.mass as f32)
        .friction(object.friction as f32)
        .collision_groups(InteractionGroups::new(
            Group::from_bits_retain(OBJECT_GROUP),
            Group::ALL,
            InteractionTestMode::And,
        ))
        .user_data(encode(TAG_OBJECT, index))
        .build())
}
