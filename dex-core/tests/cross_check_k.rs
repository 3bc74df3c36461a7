//! dex-core's forward kinematics agrees with the `k` crate (openrr/k) on the
//! built-in hands, link by link.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches may panic on failure

use dex_core::{BuiltinHand, HandModel};

fn k_chain(urdf: &str) -> k::Chain<f64> {
    let dir = std::env::temp_dir().join(format!("dex-core-k-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hand.urdf");
    std::fs::write(&path, urdf).unwrap();
    let chain = k::Chain::<f64>::from_urdf_file(&path).expect("k loads the hand");
    std::fs::remove_dir_all(&dir).ok();
    chain
}

#[test]
fn fk_agrees_with_k_on_the_builtin_hands() {
    for hand in BuiltinHand::ALL {
        let model: HandModel = hand.model();
        let chain = k_chain(hand.urdf());
        // k orders its movable joints depth-first; map them by name.
        let k_names: Vec<String> = chain
            .iter_joints()
            .filter(|j| j.is_movable())
            .map(|j| j.name.clone())
            .collect();
        assert_eq!(k_names.len(), model.dof());
        for q in [vec![0.0; 16], model.mid_configuration()] {
            let k_q: Vec<f64> = k_names
                .iter()
                .map(|n| q[model.dof_index(n).unwrap()])
                .collect();
            chain.set_joint_positions_unchecked(&k_q);
            chain.update_transforms();
            let ours = model.forward_kinematics(&q).unwrap();
            for joint in model.joints() {
                let node = chain.find(&joint.name).expect("k has every joint");
                let theirs = node.world_transform().expect("updated");
                let mine = ours[joint.child.0];
                let dp = (mine.translation.vector
                    - nalgebra::Vector3::new(
                        theirs.translation.x,
                        theirs.translation.y,
                        theirs.translation.z,
                    ))
                .norm();
                let q_k = theirs.rotation;
                let dq = mine.rotation.coords - nalgebra::Vector4::new(q_k.i, q_k.j, q_k.k, q_k.w);
                let dq_neg =
                    mine.rotation.coords + nalgebra::Vector4::new(q_k.i, q_k.j, q_k.k, q_k.w);
                assert!(dp < 1e-12, "{hand} {}: position off by {dp}", joint.name);
                assert!(
                    dq.norm().min(dq_neg.norm()) < 1e-9,
                    "{hand} {}: rotation differs",
                    joint.name
                );
            }
        }
    }
}
