//! Settings from layers: defaults, then a TOML file's keys, then `KEY=VALUE` overrides,
//! each checked against the schema (unknown keys and wrong types are errors).

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

fn config_error(message: String) -> Error {
    Error::InvalidInput(message)
}

/// `base` (the defaults), then the keys of the TOML file at `file` over it, then each
/// `KEY=VALUE` of `sets` (`ppo.num_envs=64`, `task.action_mode="relative"`), then the
/// check for unknown keys and wrong types. Values are read as TOML (numbers, booleans,
/// arrays, quoted strings), anything else as a bare string; an integer is accepted
/// where a float is expected.
///
/// ```
/// use dex_policy::run::{PpoRunConfig, layered_config};
///
/// let sets = vec!["ppo.num_envs=8".to_string(), "task.relative_scale=0.1".to_string()];
/// let config: PpoRunConfig = layered_config(PpoRunConfig::for_task("reach"), None, &sets)?;
/// assert_eq!(config.ppo.num_envs, 8);
/// assert_eq!(config.ppo.gamma, 0.9); // the reach preset, untouched
/// let bad = vec!["ppo.no_such_key=1".to_string()];
/// assert!(layered_config(PpoRunConfig::default(), None, &bad).is_err());
/// # Ok::<(), dex_policy::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::InvalidInput`] naming the file or the `--set` and the key; I/O errors
/// reading the file.
pub fn layered_config<T: Serialize + DeserializeOwned>(
    base: T,
    file: Option<&Path>,
    sets: &[String],
) -> Result<T> {
    let mut table =
        toml::Table::try_from(&base).map_err(|e| config_error(format!("the defaults: {e}")))?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_error(format!("reading {}: {e}", path.display())))?;
        let overlay: toml::Table = toml::from_str(&text)
            .map_err(|e| config_error(format!("in {}: {e}", path.display())))?;
        merge_tables(&mut table, overlay);
        // The file alone must make sense (unknown keys, types), so its errors name it.
        let _: T = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e| config_error(format!("in {}: {e}", path.display())))?;
    }
    for s in sets {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| config_error(format!("--set `{s}`: expected KEY=VALUE")))?;
        set_key(&mut table, key.trim(), parse_value(value.trim()))
            .map_err(|e| config_error(format!("--set `{s}`: {e}")))?;
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|e| config_error(format!("the config after --set: {e}")))
}

/// Writes `overlay`'s keys into `table`, descending into tables both have.
fn merge_tables(table: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (table.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over)) => {
                merge_tables(inner, over);
            }
            (_, value) => {
                table.insert(key, value);
            }
        }
    }
}

/// A TOML value from text: numbers, booleans, arrays and quoted strings as TOML reads
/// them, anything else as a bare string.
fn parse_value(text: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| text.into()),
        Err(_) => toml::Value::String(text.to_string()),
    }
}

/// Sets the dotted `key` of `table` to `value`, refusing unknown keys and other types.
fn set_key(
    table: &mut toml::Table,
    key: &str,
    value: toml::Value,
) -> std::result::Result<(), String> {
    let unknown = || format!("unknown key `{key}` (see --print-config)");
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts
        .pop()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "empty key".to_string())?;
    let mut t = table;
    for p in parts {
        t = match t.get_mut(p) {
            Some(toml::Value::Table(inner)) => inner,
            _ => return Err(unknown()),
        };
    }
    match t.get(last) {
        Some(old) if old.type_str() == value.type_str() => {}
        // An integer where a float is expected.
        Some(toml::Value::Float(_)) if value.is_integer() => {
            let v = value.as_integer().unwrap_or(0) as f64;
            t.insert(last.to_string(), toml::Value::Float(v));
            return Ok(());
        }
        Some(old) => {
            return Err(format!(
                "`{key}` takes {}, got {}",
                with_article(old.type_str()),
                with_article(value.type_str())
            ));
        }
        None => return Err(unknown()),
    }
    t.insert(last.to_string(), value);
    Ok(())
}

/// `an integer`, `a float`, ...
fn with_article(kind: &str) -> String {
    let vowel = kind.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {kind}", if vowel { "an" } else { "a" })
}
