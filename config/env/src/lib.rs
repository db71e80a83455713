//! How the bridge and the focus read their configuration: built-in defaults or a TOML file
//! ([`file_or_default`]), then environment-variable overrides of its fields ([`apply_env`]).
//!
//! The overrides are `TUTTI_BRIDGE_*` for the bridge and `TUTTI_FOCUS_*` for the focus: the
//! variable of a field is the prefix and
//! the field's name in upper case (`TUTTI_BRIDGE_` + `media_address` →
//! `TUTTI_BRIDGE_MEDIA_ADDRESS`). Text fields take the value as it is; other fields parse it
//! with `FromStr` after trimming white space; lists are comma-separated, blank items skipped. A
//! value that does not parse is an error naming the variable, its value and why.
//!
//! ```
//! use tutti_config_env::{apply_env, Field};
//!
//! let (mut name, mut port, mut peers) = (String::new(), 0_u16, Vec::<u16>::new());
//! let env = |variable: &str| match variable {
//!     "APP_PORT" => Some(" 8080 ".to_owned()),
//!     "APP_PEERS" => Some("1, 2,".to_owned()),
//!     _ => None,
//! };
//! apply_env(
//!     "APP_",
//!     env,
//!     [
//!         ("name", Field::text(&mut name)),
//!         ("port", Field::value(&mut port)),
//!         ("peers", Field::list(&mut peers)),
//!     ],
//! )
//! .unwrap();
//! assert_eq!((name.as_str(), port, peers), ("", 8080, vec![1, 2]));
//! ```

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use serde::de::DeserializeOwned;

/// The configuration in the TOML file `file`, or the defaults when there is none.
pub fn file_or_default<T: DeserializeOwned + Default>(file: Option<&Path>) -> anyhow::Result<T> {
    let Some(path) = file else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

/// An environment value that does not parse for its field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvError {
    /// The variable, e.g. `TUTTI_BRIDGE_ICE_TIMEOUT_SECS`.
    pub variable: String,
    /// The value (for a list, the item) that did not parse.
    pub value: String,
    /// Why, as the field type's parser says it.
    pub reason: String,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "environment variable {}={:?}: {}",
            self.variable, self.value, self.reason
        )
    }
}

impl std::error::Error for EnvError {}

/// A value (or list item) that did not parse, and why.
type Invalid = (String, String);

/// Sets a field from a variable's value.
type Setter<'a> = Box<dyn FnMut(&str) -> Result<(), Invalid> + 'a>;

/// One configuration field that a variable can override; see the crate's documentation.
pub struct Field<'a>(Setter<'a>);

impl<'a> Field<'a> {
    /// A text field: the value as it is, white space included.
    pub fn text(target: &'a mut String) -> Field<'a> {
        Field(Box::new(move |value| {
            *target = value.to_owned();
            Ok(())
        }))
    }

    /// A field parsed from the trimmed value.
    pub fn value<T>(target: &'a mut T) -> Field<'a>
    where
        T: FromStr + 'a,
        T::Err: fmt::Display,
    {
        Field(Box::new(move |value| {
            *target = parse(value)?;
            Ok(())
        }))
    }

    /// A list: comma-separated items, each parsed from its trimmed text; blank items are
    /// skipped, so an empty value makes an empty list.
    pub fn list<T>(target: &'a mut Vec<T>) -> Field<'a>
    where
        T: FromStr + 'a,
        T::Err: fmt::Display,
    {
        Field(Box::new(move |value| {
            *target = value
                .split(',')
                .filter(|item| !item.trim().is_empty())
                .map(parse)
                .collect::<Result<_, _>>()?;
            Ok(())
        }))
    }
}

fn parse<T>(value: &str) -> Result<T, Invalid>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| (value.to_owned(), e.to_string()))
}

/// The variable that overrides `field`: `prefix` and the field's name in upper case.
pub fn variable(prefix: &str, field: &str) -> String {
    format!("{prefix}{}", field.to_ascii_uppercase())
}

/// Sets every field whose variable `var` returns a value for (`var` is `std::env::var` in the
/// binaries, a stand-in in tests), in the order given; stops at the first value that does not
/// parse.
pub fn apply_env<'a>(
    prefix: &str,
    var: impl Fn(&str) -> Option<String>,
    fields: impl IntoIterator<Item = (&'a str, Field<'a>)>,
) -> Result<(), EnvError> {
    for (field, Field(mut set)) in fields {
        let variable = variable(prefix, field);
        if let Some(value) = var(&variable) {
            set(&value).map_err(|(value, reason)| EnvError {
                variable,
                value,
                reason,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, SocketAddr};

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(variable, _)| *variable == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Example {
        name: String,
        port: u16,
    }

    impl Default for Example {
        fn default() -> Self {
            Example {
                name: "default".to_owned(),
                port: 1,
            }
        }
    }

    #[test]
    fn a_file_overrides_the_defaults_it_names() {
        assert_eq!(
            file_or_default::<Example>(None).unwrap(),
            Example::default()
        );
        let path =
            std::env::temp_dir().join(format!("tutti-config-env-{}.toml", std::process::id()));
        std::fs::write(&path, "port = 2\n").unwrap();
        let read: Example = file_or_default(Some(&path)).unwrap();
        assert_eq!((read.name.as_str(), read.port), ("default", 2));
        std::fs::write(&path, "colour = 2\n").unwrap();
        let error = file_or_default::<Example>(Some(&path)).unwrap_err();
        assert!(
            format!("{error:#}").contains("parsing config file"),
            "{error:#}"
        );
        std::fs::remove_file(&path).unwrap();
        let error = file_or_default::<Example>(Some(&path)).unwrap_err();
        assert!(
            error.to_string().starts_with("reading config file"),
            "{error}"
        );
    }

    #[test]
    fn only_set_variables_change_their_fields() {
        let mut id = "default".to_owned();
        let mut address: SocketAddr = "127.0.0.1:10000".parse().unwrap();
        let mut timeout = 30_u64;
        apply_env(
            "TUTTI_X_",
            env(&[("TUTTI_X_TIMEOUT_SECS", " 5\n"), ("TUTTI_Y_ID", "other")]),
            [
                ("id", Field::text(&mut id)),
                ("address", Field::value(&mut address)),
                ("timeout_secs", Field::value(&mut timeout)),
            ],
        )
        .unwrap();
        assert_eq!(id, "default");
        assert_eq!(address.port(), 10000);
        assert_eq!(timeout, 5);
    }

    #[test]
    fn text_is_taken_as_it_is() {
        let mut id = String::new();
        apply_env(
            "P_",
            env(&[("P_ID", " a b ")]),
            [("id", Field::text(&mut id))],
        )
        .unwrap();
        assert_eq!(id, " a b ");
    }

    #[test]
    fn lists_are_comma_separated_and_skip_blank_items() {
        let mut addresses: Vec<IpAddr> = vec!["192.0.2.9".parse().unwrap()];
        let mut rooms: Vec<String> = Vec::new();
        apply_env(
            "P_",
            env(&[
                ("P_ADDRESSES", "192.0.2.1, 192.0.2.2,,"),
                ("P_ROOMS", " a@muc , ,b@muc"),
            ]),
            [
                ("addresses", Field::list(&mut addresses)),
                ("rooms", Field::list(&mut rooms)),
            ],
        )
        .unwrap();
        assert_eq!(addresses.len(), 2);
        assert_eq!(rooms, ["a@muc", "b@muc"]);
        apply_env(
            "P_",
            env(&[("P_ROOMS", "")]),
            [("rooms", Field::list(&mut rooms))],
        )
        .unwrap();
        assert!(rooms.is_empty());
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_value() {
        let mut timeout = 30_u64;
        let error = apply_env(
            "TUTTI_X_",
            env(&[("TUTTI_X_TIMEOUT_SECS", "soon")]),
            [("timeout_secs", Field::value(&mut timeout))],
        )
        .unwrap_err();
        assert_eq!(error.variable, "TUTTI_X_TIMEOUT_SECS");
        assert_eq!(
            error.to_string(),
            "environment variable TUTTI_X_TIMEOUT_SECS=\"soon\": invalid digit found in string"
        );
        let mut addresses: Vec<IpAddr> = Vec::new();
        let error = apply_env(
            "P_",
            env(&[("P_ADDRESSES", "192.0.2.1, nowhere")]),
            [("addresses", Field::list(&mut addresses))],
        )
        .unwrap_err();
        assert_eq!(error.value, " nowhere");
        assert!(error
            .to_string()
            .starts_with("environment variable P_ADDRESSES=\" nowhere\""));
    }
}
