//! The hands that ship with dex, embedded so nothing needs downloading.

use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use super::HandModel;
use crate::error::{Error, Result};

/// URDF of the LEAP Hand (right), authored for dex from the published
/// measurements of the MuJoCo Menagerie model (see the file's header).
pub const LEAP_RIGHT_URDF: &str = include_str!("../../hands/leap_right.urdf");

/// URDF of the Allegro Hand V4 (right), authored for dex from the published
/// measurements of the MuJoCo Menagerie model (see the file's header).
pub const ALLEGRO_RIGHT_URDF: &str = include_str!("../../hands/allegro_right.urdf");

/// A hand model built into dex.
///
/// Parse one from `"leap"`, `"leap_right"`, `"allegro"` or `"allegro_right"`.
///
/// # Joint order of the LEAP Hand
///
/// Joint `i` of the LEAP model drives motor ID `i` on the real hand's bus:
///
/// | IDs | joints |
/// | --- | --- |
/// | 0–3 | `if_rot` (MCP side), `if_mcp` (MCP forward), `if_pip`, `if_dip` |
/// | 4–7 | `mf_rot`, `mf_mcp`, `mf_pip`, `mf_dip` |
/// | 8–11 | `rf_rot`, `rf_mcp`, `rf_pip`, `rf_dip` |
/// | 12–15 | `th_cmc`, `th_axl`, `th_mcp`, `th_ipl` |
///
/// Angles follow the simulation convention (0 = open hand, positive closes);
/// the real servos read `angle + π` (2048 ticks = open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinHand {
    /// LEAP Hand, right (16 DoF, Dynamixel XC330-M288-T).
    LeapRight,
    /// Allegro Hand V4, right (16 DoF).
    AllegroRight,
}

impl BuiltinHand {
    /// Every built-in hand.
    pub const ALL: [BuiltinHand; 2] = [BuiltinHand::LeapRight, BuiltinHand::AllegroRight];

    /// The short name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinHand::LeapRight => "leap",
            BuiltinHand::AllegroRight => "allegro",
        }
    }

    /// The embedded URDF text.
    pub fn urdf(self) -> &'static str {
        match self {
            BuiltinHand::LeapRight => LEAP_RIGHT_URDF,
            BuiltinHand::AllegroRight => ALLEGRO_RIGHT_URDF,
        }
    }

    /// The model (parsed once per process, then cloned).
    pub fn model(self) -> HandModel {
        static LEAP: OnceLock<HandModel> = OnceLock::new();
        static ALLEGRO: OnceLock<HandModel> = OnceLock::new();
        let cell = match self {
            BuiltinHand::LeapRight => &LEAP,
            BuiltinHand::AllegroRight => &ALLEGRO,
        };
        cell.get_or_init(|| match HandModel::from_urdf_str(self.urdf()) {
            Ok(model) => model,
            // The embedded files are checked by this crate's tests.
            Err(e) => unreachable!("built-in hand `{}` does not load: {e}", self.name()),
        })
        .clone()
    }
}

impl FromStr for BuiltinHand {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "leap" | "leap_right" | "leap-right" => Ok(BuiltinHand::LeapRight),
            "allegro" | "allegro_right" | "allegro-right" => Ok(BuiltinHand::AllegroRight),
            _ => Err(Error::UnknownName {
                kind: "built-in hand",
                name: s.to_string(),
                known: BuiltinHand::ALL
                    .iter()
                    .map(|h| h.name().to_string())
                    .collect(),
            }),
        }
    }
}

impl std::fmt::Display for BuiltinHand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl HandModel {
    /// Loads a built-in hand by name (`leap`, `allegro`; see [`BuiltinHand`]) or,
    /// failing that, a URDF file at that path.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] if `spec` is neither a built-in name nor an existing
    /// file; otherwise as [`HandModel::from_urdf_file`].
    pub fn load(spec: &str) -> Result<Self> {
        if let Ok(hand) = spec.parse::<BuiltinHand>() {
            return Ok(hand.model());
        }
        let path = Path::new(spec);
        if path.is_file() {
            return Self::from_urdf_file(path);
        }
        Err(Error::UnknownName {
            kind: "hand (built-in name or URDF file)",
            name: spec.to_string(),
            known: BuiltinHand::ALL
                .iter()
                .map(|h| h.name().to_string())
                .collect(),
        })
    }

    /// The LEAP Hand, right, built in. Joint `i` is motor ID `i` on the real hand.
    pub fn leap_right() -> Self {
        BuiltinHand::LeapRight.model()
    }

    /// The Allegro Hand (V4), right, built in.
    pub fn allegro_right() -> Self {
        BuiltinHand::AllegroRight.model()
    }
}
