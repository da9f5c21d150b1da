//! Reading a parsed TOML table key by key, collecting every problem with its
//! key path instead of stopping at the first (serde stops at the first).
use toml::{Table, Value};

/// All problems found so far, each "key.path: what is wrong".
#[derive(Debug, Default)]
pub struct Problems(pub Vec<String>);

impl Problems {
    pub fn push(&mut self, path: &str, message: impl std::fmt::Display) {
        self.0.push(format!("{path}: {message}"));
    }
}

/// One table being read: remembers which keys were used, so whatever is left
/// at `finish` is an unknown key.
pub struct Fields<'a> {
    table: &'a Table,
    path: String,
    used: Vec<&'static str>,
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

impl<'a> Fields<'a> {
    pub fn new(table: &'a Table, path: impl Into<String>) -> Self {
        Self { table, path: path.into(), used: Vec::new() }
    }

    /// "section.key", or "key" at the top level.
    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) }
    }

    /// The raw value of `key`, if present (marks it known).
    pub fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.push(key);
        self.table.get(key)
    }

    /// Reads `key` with `convert`, which says what it expected on failure.
    pub fn read<T>(
        &mut self,
        key: &'static str,
        problems: &mut Problems,
        convert: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.raw(key)?;
        match convert(value) {
            Ok(v) => Some(v),
            Err(message) => {
                problems.push(&self.path_of(key), message);
                None
            }
        }
    }

    pub fn bool(&mut self, key: &'static str, problems: &mut Problems) -> Option<bool> {
        self.read(key, problems, |v| v.as_bool().ok_or_else(|| expected("a boolean", v)))
    }

    pub fn string(&mut self, key: &'static str, problems: &mut Problems) -> Option<&'a str> {
        let value = self.raw(key)?;
        match value.as_str() {
            Some(s) => Some(s),
            None => {
                problems.push(&self.path_of(key), expected("a string", value));
                None
            }
        }
    }

    /// A number (integer or float).
    pub fn number(&mut self, key: &'static str, problems: &mut Problems) -> Option<f64> {
        self.read(key, problems, number)
    }

    pub fn unsigned(&mut self, key: &'static str, problems: &mut Problems) -> Option<u64> {
        self.read(key, problems, |v| match v {
            Value::Integer(i) if *i >= 0 => Ok(*i as u64),
            Value::Integer(i) => Err(format!("{i} is negative; expected a whole number >= 0")),
            other => Err(expected("a whole number", other)),
        })
    }

    pub fn table(&mut self, key: &'static str, problems: &mut Problems) -> Option<&'a Table> {
        let value = self.raw(key)?;
        match value.as_table() {
            Some(t) => Some(t),
            None => {
                problems.push(&self.path_of(key), expected("a table", value));
                None
            }
        }
    }

    /// Reports every key that no reader asked for.
    pub fn finish(self, problems: &mut Problems) {
        for key in self.table.keys() {
            if !self.used.contains(&key.as_str()) {
                let mut known = self.used.clone();
                known.sort_unstable();
                known.dedup();
                problems.push(&self.path_of(key), format!("unknown key (known keys here: {})", known.join(", ")));
            }
        }
    }
}

pub fn expected(what: &str, got: &Value) -> String {
    format!("expected {what}, found {}", type_name(got))
}

/// A finite number (TOML allows `inf` and `nan`, which no setting means).
pub fn number(value: &Value) -> Result<f64, String> {
    match value {
        Value::Integer(i) => Ok(*i as f64),
        Value::Float(f) if f.is_finite() => Ok(*f),
        Value::Float(f) => Err(format!("{f} is not a finite number")),
        other => Err(expected("a number", other)),
    }
}
