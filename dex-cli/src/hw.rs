//! `dex hw`: the servo-bus emulator and tools for a real (or emulated) LEAP Hand.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use dex_hw::control_table as ct;
use dex_hw::{DynamixelBus, HandDriver, LeapConfig, LeapHand, SerialTransport, ServoBus};

/// `dex hw ...`
#[derive(Debug, Subcommand)]
pub enum HwCommand {
    /// Emulate a hand's servos; with --pty, on a new pseudo-terminal.
    Emulate(EmulateArgs),
    /// List the servos on a bus (ID, model number, firmware).
    Scan(PortArgs),
    /// Print joint angles (rad) at a fixed rate. Writes nothing to the servos.
    Monitor(MonitorArgs),
    /// Time control cycles: Sync Write of 16 goals + Fast Sync Read of 16 states.
    Bench(BenchArgs),
}

/// Arguments of `dex hw emulate`.
#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// The hand whose servos to emulate (only `leap`: 16 XC330-M288-T, IDs 0–15).
    #[arg(long, default_value = "leap")]
    hand: String,
    /// Serve the bus on a new pseudo-terminal; its path is the first line of stdout.
    #[arg(long)]
    pty: bool,
    /// What moves the servos: `motor` (each servo's own motor model) or `sim` (a
    /// simulated LEAP Hand in dex-sim, in real time: goals become joint targets,
    /// present position, velocity and current come from the simulated joints).
    #[arg(long, default_value = "motor")]
    physics: String,
    /// With `--physics sim`: an object resting on the palm (`none`, `cube`, `mug`, ...),
    /// or `chaos-box` (the hand in a closed box of 40 light balls).
    #[arg(long, default_value = "cube")]
    object: String,
    /// With `--physics sim`: what drives the simulated joints, `pd` (the engine's PD
    /// follows the goals: the ideal hand) or `servo` (each servo's control law as
    /// torque, 1 ms steps, with the gap of --gap: the stand-in for a real hand).
    #[arg(long, default_value = "pd", value_parser = ["pd", "servo"])]
    actuator: String,
    /// With `--actuator servo`: a TOML file of `GapConfig` keys (latency_ticks,
    /// joint_friction, backlash, gain_error, seed, payload, friction_scale,
    /// physics_dt); without it, the default gap.
    #[arg(long)]
    gap: Option<PathBuf>,
    /// With `--physics sim`: gravity in the world frame, `X,Y,Z` (m/s²; the palm faces
    /// up, so `0,0,9.81` is palm down).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    gravity: Option<Vec<f64>>,
}

/// Which serial port.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// Serial port (e.g. /dev/ttyUSB0, or the path `dex hw emulate --pty` printed).
    #[arg(long)]
    port: String,
    /// Line rate (bit/s).
    #[arg(long, default_value_t = 4_000_000)]
    baud: u32,
}

/// Arguments of `dex hw monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    port: PortArgs,
    /// The hand on the bus (only `leap`).
    #[arg(long, default_value = "leap")]
    hand: String,
    /// Lines per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Stop after this many lines (default: until Ctrl-C).
    #[arg(long)]
    count: Option<usize>,
}

/// Arguments of `dex hw bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    port: PortArgs,
    /// The hand on the bus (only `leap`).
    #[arg(long, default_value = "leap")]
    hand: String,
    /// Number of control cycles.
    #[arg(long, default_value_t = 1000)]
    cycles: usize,
    /// Run a fixed-rate control loop at this rate (Hz) instead of back to back,
    /// with torque on holding the present pose, and report period jitter.
    #[arg(long)]
    rate: Option<f64>,
}

fn check_hand(hand: &str) -> Result<()> {
    match hand {
        "leap" | "leap_right" => Ok(()),
        other => bail!(
            "`{other}`: only the LEAP Hand (`leap`) has a servo-bus driver; the Allegro Hand speaks CAN"
        ),
    }
}

/// Runs `dex hw ...`.
pub fn run(cmd: HwCommand) -> Result<()> {
    match cmd {
        HwCommand::Emulate(args) => emulate(args),
        HwCommand::Scan(args) => scan(args),
        HwCommand::Monitor(args) => monitor(args),
        HwCommand::Bench(args) => bench(args),
    }
}

/// A channel that receives one message on SIGINT or SIGTERM.
fn stop_signal() -> Result<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("cannot install the SIGINT/SIGTERM handler")?;
    Ok(rx)
}

fn emulate(args: EmulateArgs) -> Result<()> {
    check_hand(&args.hand)?;
    if !args.pty {
        bail!("give --pty: the emulator serves its bus on a new pseudo-terminal");
    }
    if args.physics != "sim"
        && (args.actuator != "pd" || args.gap.is_some() || args.gravity.is_some())
    {
        bail!("--actuator, --gap and --gravity need --physics sim");
    }
    let gravity = parse_gravity(args.gravity.as_deref())?;
    let bus = match args.physics.as_str() {
        "motor" => ServoBus::leap_hand(),
        "sim" if args.actuator == "servo" => {
            let gap = read_gap(args.gap.as_deref())?;
            gap_scene_bus(
                &args.object,
                gravity,
                &gap,
                dex_hw::emulator::PhysicsClock::BusTime,
            )?
            .0
        }
        "sim" => {
            if args.gap.is_some() {
                bail!("--gap needs --actuator servo");
            }
            // 2 ms physics steps, taken in real time as the bus clock advances.
            let mut config = dex_sim::SimConfig::for_hand(&dex_core::HandModel::leap_right());
            config.substeps = 1;
            if let Some(g) = gravity {
                config.gravity = g;
            }
            let sim = leap_sim_scene(&args.object, config, None)?;
            let joints = dex_hw::emulator::SimJoints::new(sim);
            ServoBus::leap_hand_with_physics(
                Box::new(joints),
                dex_hw::emulator::PhysicsClock::BusTime,
            )?
        }
        other => bail!("--physics `{other}`: expected `motor` or `sim`"),
    };
    let stop = stop_signal()?;
    let emulator = dex_hw::emulator::PtyEmulator::start(bus)?;
    crate::stdout::output(&format!("pty {}", emulator.path()))?;
    eprintln!(
        "emulating 16 XC330-M288-T servos (IDs 0-15, physics: {}, actuator: {}); Ctrl-C to stop",
        args.physics, args.actuator
    );
    let _ = stop.recv();
    drop(emulator);
    Ok(())
}

/// `--gravity X,Y,Z` as a vector.
pub(crate) fn parse_gravity(values: Option<&[f64]>) -> Result<Option<nalgebra::Vector3<f64>>> {
    match values {
        None => Ok(None),
        Some([x, y, z]) if [x, y, z].iter().all(|v| v.is_finite()) => {
            Ok(Some(nalgebra::Vector3::new(*x, *y, *z)))
        }
        Some(other) => bail!("--gravity needs three finite numbers X,Y,Z, got {other:?}"),
    }
}

/// A gap file (`GapConfig` keys), or the default gap.
pub(crate) fn read_gap(path: Option<&std::path::Path>) -> Result<dex_hw::emulator::GapConfig> {
    let gap: dex_hw::emulator::GapConfig = match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("in {}", p.display()))?
        }
        None => dex_hw::emulator::GapConfig::default(),
    };
    gap.validate()?;
    Ok(gap)
}

/// The gap hand (servo-driven simulated LEAP Hand, the gap applied) with `object` on
/// its palm, behind an emulated bus on `clock`, and a handle on its simulation.
pub(crate) fn gap_scene_bus(
    object: &str,
    gravity: Option<nalgebra::Vector3<f64>>,
    gap: &dex_hw::emulator::GapConfig,
    clock: dex_hw::emulator::PhysicsClock,
) -> Result<(ServoBus, dex_hw::emulator::SharedSimulator)> {
    let mut config = dex_sim::SimConfig::for_hand(&dex_core::HandModel::leap_right());
    config.dt = gap.physics_dt;
    config.substeps = 1;
    if let Some(g) = gravity {
        config.gravity = g;
    }
    let sim = leap_sim_scene(object, config, Some(gap))?;
    Ok(dex_hw::emulator::gap_hand_shared(sim, gap, clock)?)
}

/// The LEAP Hand in process behind an emulated bus stepped `1/rate` s per goal write,
/// with a handle on its simulation: the gap hand (`servo`: `gap`'s servo actuation and
/// differences) or the ideal one (`pd`: the engine's PD joints, 2 ms steps, no gap).
pub(crate) fn emulated_bus(
    object: &str,
    gravity: Option<nalgebra::Vector3<f64>>,
    gap: &dex_hw::emulator::GapConfig,
    actuator: &str,
    rate: f64,
) -> Result<(ServoBus, dex_hw::emulator::SharedSimulator)> {
    match actuator {
        "servo" => {
            let steps = (1.0 / (rate * gap.physics_dt)).round().max(1.0) as usize;
            gap_scene_bus(
                object,
                gravity,
                gap,
                dex_hw::emulator::PhysicsClock::StepsPerGoalWrite(steps),
            )
        }
        "pd" => {
            let mut config = dex_sim::SimConfig::for_hand(&dex_core::HandModel::leap_right());
            config.substeps = 1;
            if let Some(g) = gravity {
                config.gravity = g;
            }
            let steps = (1.0 / (rate * config.dt)).round().max(1.0) as usize;
            let sim = leap_sim_scene(object, config, None)?;
            let joints = dex_hw::emulator::SimJoints::new(sim);
            let handle = joints.handle();
            let bus = ServoBus::leap_hand_with_physics(
                Box::new(joints),
                dex_hw::emulator::PhysicsClock::StepsPerGoalWrite(steps),
            )?;
            Ok((bus, handle))
        }
        other => bail!("--actuator `{other}`: expected `servo` or `pd`"),
    }
}

/// The simulated LEAP Hand with `object` (or nothing for `none`) resting on its palm;
/// with a gap, the object carries its payload and friction change. `chaos-box` closes
/// the hand in a box of 40 light balls ([`dex_sim::chaos_box`]; the gap scales their
/// friction, not their mass), settled for a second before the scene is handed over.
pub(crate) fn leap_sim_scene(
    object: &str,
    config: dex_sim::SimConfig,
    gap: Option<&dex_hw::emulator::GapConfig>,
) -> Result<Box<dyn dex_sim::Simulator>> {
    let model = dex_core::HandModel::leap_right();
    if object == "chaos-box" {
        let scene = dex_sim::chaos_box(&model, &config, &dex_sim::ChaosBox::default())?;
        let objects: Vec<dex_sim::ObjectSpec> = scene
            .objects
            .iter()
            .map(|b| match gap {
                Some(g) => dex_sim::ObjectSpec {
                    friction: b.friction * g.friction_scale,
                    ..b.clone()
                },
                None => b.clone(),
            })
            .collect();
        let dt = scene.config.dt;
        let mut sim = dex_sim::RapierSim::new(model, &objects, &scene.poses, scene.config)?;
        sim.step_physics((1.0 / dt).round() as usize)?;
        return Ok(Box::new(sim));
    }
    let (objects, poses) = if object == "none" {
        (Vec::new(), Vec::new())
    } else {
        let mut spec =
            dex_sim::ObjectSpec::named(object).with_context(|| format!("--object `{object}`"))?;
        if let Some(gap) = gap {
            spec = gap.object(&spec);
        }
        let pose =
            dex_sim::rest_pose_on_palm(&model, &config.hand_pose, spec.shape.half_height(), 0.002);
        (vec![spec], vec![pose])
    };
    Ok(Box::new(dex_sim::RapierSim::new(
        model, &objects, &poses, config,
    )?))
}

fn open_bus(port: &PortArgs) -> Result<DynamixelBus<SerialTransport>> {
    let transport = SerialTransport::open(&port.port, port.baud)?;
    Ok(DynamixelBus::new(transport))
}

fn scan(args: PortArgs) -> Result<()> {
    let mut bus = open_bus(&args)?;
    let found = bus.broadcast_ping(Duration::from_millis(200))?;
    let mut s = format!("{:>4} {:>6} {:>9}\n", "id", "model", "firmware");
    for p in &found {
        s.push_str(&format!("{:>4} {:>6} {:>9}\n", p.id, p.model, p.firmware));
    }
    s.push_str(&format!(
        "{} servo(s) found on {} at {} bit/s",
        found.len(),
        args.port,
        args.baud
    ));
    crate::stdout::output(&s)
}

fn open_leap(port: &PortArgs, hand: &str) -> Result<LeapHand<SerialTransport>> {
    check_hand(hand)?;
    let transport = SerialTransport::open(&port.port, port.baud)?;
    Ok(LeapHand::open(transport, LeapConfig::default())?)
}

fn monitor(args: MonitorArgs) -> Result<()> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        bail!("--rate must be positive, got {}", args.rate);
    }
    let mut hand = open_leap(&args.port, &args.hand)?;
    let stop = stop_signal()?;
    let names = hand.joint_names();
    crate::stdout::output(&format!("t_s {}", names.join(" ")))?;
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let start = Instant::now();
    let mut k = 0usize;
    while args.count.is_none_or(|n| k < n) {
        let state = hand.read_state()?;
        let values: Vec<String> = state.q.iter().map(|q| format!("{q:.4}")).collect();
        crate::stdout::output(&format!(
            "{:.3} {}",
            start.elapsed().as_secs_f64(),
            values.join(" ")
        ))?;
        k += 1;
        let next = start + period * k as u32;
        if stop
            .recv_timeout(next.saturating_duration_since(Instant::now()))
            .is_ok()
        {
            break;
        }
    }
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    if args.cycles == 0 {
        bail!("--cycles must be at least 1");
    }
    let mut hand = open_leap(&args.port, &args.hand)?;
    if let Some(rate) = args.rate {
        return bench_loop(hand, rate, args.cycles);
    }
    // Configure (current-based position mode, gains, Return Delay Time 0) with
    // torque off: the goals written below move nothing.
    hand.configure()?;
    let ids: Vec<u8> = hand.config().ids.clone();
    let bus = hand.bus_mut();
    let n = ids.len();
    let mut present = vec![0u8; n * 4];
    bus.fast_sync_read(ct::PRESENT_POSITION.address, 4, &ids, &mut present)?;
    let mut state = vec![0u8; n * 10];
    let mut times = Vec::with_capacity(args.cycles);
    let start = Instant::now();
    for _ in 0..args.cycles {
        let t = Instant::now();
        bus.sync_write(ct::GOAL_POSITION.address, 4, &ids, &present)?;
        bus.fast_sync_read(ct::PRESENT_CURRENT.address, 10, &ids, &mut state)?;
        times.push(t.elapsed().as_secs_f64());
    }
    let wall = start.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize] * 1e3;
    crate::stdout::output(&format!(
        "{} cycles in {:.3} s: cycle p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms\ncycles_per_s {:.1}",
        args.cycles,
        wall,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        args.cycles as f64 / wall
    ))
}

/// A fixed-rate loop holding the present pose, through the safety layer.
fn bench_loop(hand: LeapHand<SerialTransport>, rate: f64, cycles: usize) -> Result<()> {
    let model = dex_core::HandModel::leap_right();
    let config = dex_hw::SafetyConfig::from_model(&model, Some(0.05));
    let mut hand = dex_hw::SafetyLimits::new(hand, config)?;
    hand.configure()?;
    hand.enable()?;
    let hold = hand.read_state()?.q;
    let report = dex_hw::run_control_loop(&mut hand, rate, cycles, |_, _| {
        dex_hw::JointTargets::new(hold.clone())
    });
    let disabled = hand.disable();
    let report = report?;
    disabled?;
    crate::stdout::output(&format!(
        "{} cycles at {:.1} Hz requested, {:.1} Hz achieved; overruns {}\n\
         period jitter p50 {:.1} us, p99 {:.1} us, max {:.1} us; cycle work p50 {:.1} us, p99 {:.1} us\n\
         jitter_p99_us {:.1}",
        report.cycles,
        report.rate_hz,
        report.achieved_hz,
        report.overruns,
        report.jitter_p50 * 1e6,
        report.jitter_p99 * 1e6,
        report.jitter_max * 1e6,
        report.busy_p50 * 1e6,
        report.busy_p99 * 1e6,
        report.jitter_p99 * 1e6,
    ))
}
