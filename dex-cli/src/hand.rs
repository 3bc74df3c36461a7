//! `dex hand show` and `dex fk`.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use dex_core::{Frame, HandModel, JointLimits};
use serde_json::{Map, Value, json};

/// `writeln!` into a `String` (which cannot fail).
macro_rules! push_line {
    ($s:expr) => {{
        $s.push('\n');
    }};
    ($s:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($s, $($arg)*);
    }};
}

/// `dex hand ...`
#[derive(Debug, Subcommand)]
pub enum HandCommand {
    /// Joints (in model order), limits, keypoints and masses of a hand.
    Show(ShowArgs),
}

/// Which hand: a built-in name or a URDF file.
#[derive(Debug, Args)]
pub struct HandArg {
    /// `leap`, `allegro`, or the path of a URDF file.
    #[arg(long, default_value = "leap")]
    hand: String,
}

impl HandArg {
    fn load(&self) -> Result<HandModel> {
        HandModel::load(&self.hand).with_context(|| format!("cannot load hand `{}`", self.hand))
    }
}

/// Arguments of `dex hand show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    hand: HandArg,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

/// Arguments of `dex fk`.
#[derive(Debug, Args)]
pub struct FkArgs {
    #[command(flatten)]
    hand: HandArg,
    /// Joint values in the model's joint order, comma separated (rad or m).
    #[arg(
        long,
        allow_hyphen_values = true,
        conflicts_with = "q_named",
        required_unless_present = "q_named"
    )]
    q: Option<String>,
    /// Joint values by name, `name=value,...`; joints not named stay at 0.
    #[arg(long, allow_hyphen_values = true)]
    q_named: Option<String>,
    /// Clamp values outside the joint limits instead of refusing them.
    #[arg(long)]
    clamp: bool,
    /// Print one JSON object `{"links": {name: {"pos": [x,y,z], "quat": [w,x,y,z]}}}`.
    #[arg(long)]
    json: bool,
}

/// Runs `dex hand ...`.
pub fn run_hand(cmd: HandCommand) -> Result<()> {
    match cmd {
        HandCommand::Show(args) => {
            let model = args.hand.load()?;
            if args.json {
                crate::stdout::output(&serde_json::to_string_pretty(&describe(&model))?)?;
            } else {
                crate::stdout::output(&tables(&model))?;
            }
            Ok(())
        }
    }
}

/// A finite number, or JSON `null` for an infinite one (no limit).
fn num(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

fn frame_json(model: &HandModel, f: &Frame) -> Value {
    let t = f.offset.translation.vector;
    json!({ "name": f.name, "link": model.link(f.link).name, "xyz": [t.x, t.y, t.z] })
}

fn describe(model: &HandModel) -> Value {
    let joints: Vec<Value> = model
        .dof_joints()
        .enumerate()
        .map(|(i, j)| {
            let l = j.limits.unwrap_or(JointLimits {
                lower: f64::NEG_INFINITY,
                upper: f64::INFINITY,
                velocity: f64::INFINITY,
                effort: f64::INFINITY,
            });
            let axis = j.axis.into_inner();
            json!({
                "index": i,
                "name": j.name,
                "type": j.kind.as_str(),
                "parent": model.link(j.parent).name,
                "child": model.link(j.child).name,
                "axis": [axis.x, axis.y, axis.z],
                "lower": num(l.lower),
                "upper": num(l.upper),
                "velocity": num(l.velocity),
                "effort": num(l.effort),
                "damping": j.dynamics.damping,
                "friction": j.dynamics.friction,
                "kp": j.actuator.map(|a| a.kp),
                "kv": j.actuator.map(|a| a.kv),
                "motor_id": j.actuator.and_then(|a| a.motor_id),
            })
        })
        .collect();
    let links: Vec<Value> = model
        .links()
        .iter()
        .map(|l| {
            json!({
                "name": l.name,
                "mass": l.inertial.map(|i| i.mass),
                "com": l.inertial.map(|i| [i.com.x, i.com.y, i.com.z]),
                "collisions": l.collisions.iter().map(|g| g.shape.kind()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "name": model.name(),
        "root": model.link(model.root()).name,
        "dof": model.dof(),
        "total_mass": model.total_mass(),
        "joints": joints,
        "links": links,
        "fingertips": model.fingertips().iter().map(|f| frame_json(model, f)).collect::<Vec<_>>(),
        "keypoints": model.keypoints().iter().map(|f| frame_json(model, f)).collect::<Vec<_>>(),
    })
}

fn fmt_limit(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "-".into()
    }
}

fn tables(model: &HandModel) -> String {
    let mut s = String::new();
    push_line!(
        s,
        "{}: {} degrees of freedom, {} links, root `{}`, total mass {:.4} kg",
        model.name(),
        model.dof(),
        model.links().len(),
        model.link(model.root()).name,
        model.total_mass()
    );
    push_line!(s);
    push_line!(
        s,
        "{:>3}  {:<14} {:<10} {:<24} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>5}",
        "#",
        "joint",
        "type",
        "parent -> child",
        "lower",
        "upper",
        "effort",
        "velocity",
        "kp",
        "kv",
        "motor"
    );
    for (i, j) in model.dof_joints().enumerate() {
        let l = j.limits;
        let link_pair = format!(
            "{} -> {}",
            model.link(j.parent).name,
            model.link(j.child).name
        );
        push_line!(
            s,
            "{:>3}  {:<14} {:<10} {:<24} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>5}",
            i,
            j.name,
            j.kind.as_str(),
            link_pair,
            l.map_or("-".into(), |l| fmt_limit(l.lower)),
            l.map_or("-".into(), |l| fmt_limit(l.upper)),
            l.map_or("-".into(), |l| fmt_limit(l.effort)),
            l.map_or("-".into(), |l| fmt_limit(l.velocity)),
            j.actuator.map_or("-".into(), |a| format!("{}", a.kp)),
            j.actuator.map_or("-".into(), |a| format!("{}", a.kv)),
            j.actuator
                .and_then(|a| a.motor_id)
                .map_or("-".into(), |m| m.to_string()),
        );
    }
    for (title, frames) in [
        ("fingertips", model.fingertips()),
        ("keypoints", model.keypoints()),
    ] {
        push_line!(s);
        push_line!(s, "{title}:");
        for f in frames {
            let t = f.offset.translation.vector;
            push_line!(
                s,
                "  {:<12} on {:<14} at [{:>9.5}, {:>9.5}, {:>9.5}] m",
                f.name,
                model.link(f.link).name,
                t.x,
                t.y,
                t.z
            );
        }
    }
    push_line!(s);
    push_line!(s, "links (mass kg):");
    for l in model.links() {
        let shapes: Vec<&str> = l.collisions.iter().map(|g| g.shape.kind()).collect();
        push_line!(
            s,
            "  {:<14} {:>9} {:>3} collision shapes",
            l.name,
            l.inertial.map_or("-".into(), |i| format!("{:.6}", i.mass)),
            shapes.len()
        );
    }
    s
}

fn parse_values(model: &HandModel, args: &FkArgs) -> Result<Vec<f64>> {
    let parse = |s: &str| -> Result<f64> {
        let v: f64 = s
            .trim()
            .parse()
            .with_context(|| format!("`{s}` is not a number"))?;
        Ok(v)
    };
    if let Some(list) = &args.q {
        let q: Vec<f64> = list.split(',').map(parse).collect::<Result<_>>()?;
        if q.len() != model.dof() {
            bail!(
                "--q has {} values but hand `{}` has {} joints: {}",
                q.len(),
                model.name(),
                model.dof(),
                model.joint_names().join(",")
            );
        }
        Ok(q)
    } else if let Some(list) = &args.q_named {
        let pairs = list
            .split(',')
            .map(|item| {
                let (name, value) = item
                    .split_once('=')
                    .with_context(|| format!("`{item}` is not `name=value`"))?;
                Ok((name.trim(), parse(value)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(model.configuration_from_named(pairs)?)
    } else {
        bail!("give joint values with --q or --q-named")
    }
}

/// Runs `dex fk`.
pub fn run_fk(args: FkArgs) -> Result<()> {
    let model = args.hand.load()?;
    let mut q = parse_values(&model, &args)?;
    if args.clamp {
        let before = q.clone();
        model.clamp_configuration(&mut q)?;
        for ((name, b), a) in model.joint_names().iter().zip(&before).zip(&q) {
            if a != b {
                eprintln!("note: clamped {name} from {b} to {a}");
            }
        }
    }
    model.check_configuration(&q)?;
    let poses = model.forward_kinematics(&q)?;
    if args.json {
        let mut links = Map::new();
        for (link, pose) in model.links().iter().zip(&poses) {
            let t = pose.translation.vector;
            let r = pose.rotation;
            links.insert(
                link.name.clone(),
                json!({ "pos": [t.x, t.y, t.z], "quat": [r.w, r.i, r.j, r.k] }),
            );
        }
        crate::stdout::output(&serde_json::to_string_pretty(&json!({ "links": links }))?)?;
    } else {
        let mut s = String::new();
        push_line!(
            s,
            "{:<14} {:>10} {:>10} {:>10}   {:>9} {:>9} {:>9} {:>9}",
            "link",
            "x (m)",
            "y (m)",
            "z (m)",
            "qw",
            "qx",
            "qy",
            "qz"
        );
        for (link, pose) in model.links().iter().zip(&poses) {
            let t = pose.translation.vector;
            let r = pose.rotation;
            push_line!(
                s,
                "{:<14} {:>10.6} {:>10.6} {:>10.6}   {:>9.6} {:>9.6} {:>9.6} {:>9.6}",
                link.name,
                t.x,
                t.y,
                t.z,
                r.w,
                r.i,
                r.j,
                r.k
            );
        }
        crate::stdout::output(&s)?;
    }
    Ok(())
}
