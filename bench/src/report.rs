//! The JSON every suite prints: `{"suite", "results": [{"name", "value", "unit", "floor"?,
//! "ratio"?, "target"?, "met"?}]}`. A floor is raw SQLite doing the same storage work in the same
//! run, so the ratio holds on a noisy machine.

use serde_json::{json, Map, Value};

pub struct Measurement {
    name: String,
    value: f64,
    unit: &'static str,
    floor: Option<f64>,
    target: Option<Target>,
    /// The value is a rate (see [`Measurement::inverse_ratio`]).
    rate: bool,
}

/// What a figure must reach: a ratio to the floor, or an absolute bound on the value.
pub enum Target {
    RatioAtMost(f64),
    AtMost(f64),
    AtLeast(f64),
}

impl Measurement {
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            floor: None,
            target: None,
            rate: false,
        }
    }

    pub fn floor(mut self, floor: f64) -> Self {
        self.floor = Some(floor);
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// For a rate (higher is better): the ratio then compares costs, floor rate / engine rate, so
    /// 1.0 still means "as fast as the floor" and larger is slower.
    pub fn inverse_ratio(mut self) -> Self {
        self.rate = true;
        self
    }

    fn ratio(&self) -> Option<f64> {
        let floor = self.floor.filter(|f| *f > 0.0)?;
        if self.rate {
            (self.value > 0.0).then(|| floor / self.value)
        } else {
            Some(self.value / floor)
        }
    }

    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(&self.name));
        out.insert("value".into(), json!(round(self.value)));
        out.insert("unit".into(), json!(self.unit));
        if let Some(floor) = self.floor {
            out.insert("floor".into(), json!(round(floor)));
        }
        if let Some(ratio) = self.ratio() {
            out.insert("ratio".into(), json!(round(ratio)));
        }
        if let Some(target) = &self.target {
            let (text, met) = match *target {
                Target::RatioAtMost(t) => (
                    format!("ratio <= {t}"),
                    self.ratio().is_some_and(|r| r <= t),
                ),
                Target::AtMost(t) => (format!("<= {t} {}", self.unit), self.value <= t),
                Target::AtLeast(t) => (format!(">= {t} {}", self.unit), self.value >= t),
            };
            out.insert("target".into(), json!(text));
            out.insert("met".into(), json!(met));
        }
        Value::Object(out)
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn print(suite: &str, results: &[Measurement]) {
    let results: Vec<Value> = results.iter().map(Measurement::to_json).collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({"suite": suite, "results": results})).expect("JSON")
    );
}
