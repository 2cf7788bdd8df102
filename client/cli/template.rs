//! `--format` as Docker users write it: "table" (the default table),
//! "json" (one JSON object a line), a Go template (`{{.ID}}`,
//! `{{json .}}`, `{{.State.ExitCode}}`, `{{join .Args " "}}`), or "table"
//! followed by a template, which prints a header row and aligns the
//! columns its tabs separate.

use crate::Failure;
use gtmpl::{Context, FuncError, Template, Value};
use serde_json::Value as Json;
use std::collections::HashMap;

/// What `--format` asked for.
pub enum Format {
    Table,
    Json,
    Template(Go),
}

impl Format {
    pub fn parse(text: &str) -> Result<Format, Failure> {
        Ok(match text {
            "" | "table" => Format::Table,
            "json" => Format::Json,
            t => Format::Template(Go::parse(t)?),
        })
    }
}

/// A parsed Go template.
pub struct Go {
    inner: Template,
    /// "table {{…}}": a header row, and columns aligned.
    table: bool,
}

impl Go {
    pub fn parse(text: &str) -> Result<Go, Failure> {
        let (table, body) = match text.strip_prefix("table ") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        // Docker writes "\t" in a format for a tab.
        // `.Label "k"`, Docker's method on a container or image: the
        // label's value from the row's LabelMap, "" without one.
        let body = body
            .replace("\\t", "\t")
            .replace("\\n", "\n")
            .replace(".Label \"", "label .LabelMap \"");
        let body = printed_as_go(&body);
        let mut inner = Template::default();
        inner.add_funcs(&[
            ("goprint", goprint as gtmpl::Func),
            ("json", json as gtmpl::Func),
            ("label", label as gtmpl::Func),
            ("join", join as gtmpl::Func),
            ("lower", lower as gtmpl::Func),
            ("upper", upper as gtmpl::Func),
        ]);
        inner
            .parse(body)
            .map_err(|e| Failure(format!("invalid format: template parsing error: {e}"), 125))?;
        Ok(Go { inner, table })
    }

    /// `value` through the template.
    pub fn render(&self, value: &Json) -> Result<String, Failure> {
        self.inner
            .render(&Context::from(to_value(value)))
            .map_err(|e| Failure(format!("template: executing: {e}"), 1))
    }

    /// Every value through the template, a line each; for "table", after
    /// a header row (`header`, rendered with the same template) and with
    /// the tab-separated columns aligned.
    pub fn lines(&self, values: &[Json], header: &Json) -> Result<String, Failure> {
        let mut lines = Vec::with_capacity(values.len() + 1);
        if self.table {
            lines.push(self.render(header)?);
        }
        for v in values {
            lines.push(self.render(v)?);
        }
        Ok(match self.table {
            true => align(&lines),
            false => lines.iter().map(|l| format!("{l}\n")).collect(),
        })
    }
}

/// Lines whose tab-separated cells are padded to the widest of their
/// column, three spaces apart.
fn align(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            let n = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(n),
                None => widths.push(n),
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            match i + 1 == r.len() {
                true => line.push_str(cell),
                false => line.push_str(&format!("{cell:<w$}   ", w = widths[i])),
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn to_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (_, Some(i), _) => Value::from(i),
            (_, _, f) => Value::from(f.unwrap_or(0.0)),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        // As Go maps: a key that is not there is "<no value>", not an
        // error (Docker's labels and attributes are maps).
        Json::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => serde_json::from_str(&n.to_string()).unwrap_or(Json::Null),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Object(o) | Value::Map(o) => {
            // Sorted keys, as Go's encoding/json writes a map.
            let sorted: std::collections::BTreeMap<_, _> = o.iter().collect();
            Json::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), to_json(v)))
                    .collect(),
            )
        }
    }
}

/// The template with each action that prints (not a control word, a
/// comment or an assignment) passed through `goprint`, so that lists and
/// maps print as Go prints them.
fn printed_as_go(body: &str) -> String {
    const CONTROL: &[&str] = &[
        "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
    ];
    let mut out = String::with_capacity(body.len() + 16);
    let mut rest = body;
    while let Some(open) = rest.find("{{") {
        let Some(len) = rest[open..].find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        let action = &rest[open + 2..open + len];
        rest = &rest[open + len + 2..];
        let (left, action) = match action.strip_prefix("- ") {
            Some(a) => ("- ", a),
            None => ("", action),
        };
        let (action, right) = match action.strip_suffix(" -") {
            Some(a) => (a, " -"),
            None => (action, ""),
        };
        let word = action.split_whitespace().next().unwrap_or("");
        let prints = !word.is_empty()
            && !CONTROL.contains(&word)
            && !word.starts_with("/*")
            && !action.contains(":=")
            && !action.contains(" = ");
        match prints {
            true => out.push_str(&format!("{{{{{left}goprint ({action}){right}}}}}")),
            false => out.push_str(&format!("{{{{{left}{action}{right}}}}}")),
        }
    }
    out.push_str(rest);
    out
}

/// A value as Go's fmt prints it: "[a b]" for a list, "map[k:v]" for a
/// map (keys sorted), "<nil>" for nil.
fn go_text(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".into(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_text).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(m) | Value::Map(m) => {
            let sorted: std::collections::BTreeMap<_, _> = m.iter().collect();
            let items: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_text(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

fn goprint(args: &[Value]) -> Result<Value, FuncError> {
    Ok(match one("goprint", args)? {
        Value::NoValue => Value::NoValue,
        v => Value::String(go_text(v)),
    })
}

fn one<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, FuncError> {
    match args {
        [v] => Ok(v),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `{{json .}}`: the value as compact JSON.
fn json(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(to_json(one("json", args)?).to_string()))
}

/// `{{join .Args " "}}`.
fn join(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::Array(items), sep] = args else {
        return Err(FuncError::Generic(
            "join takes a list and a separator".into(),
        ));
    };
    let items: Vec<String> = items.iter().map(text).collect();
    Ok(Value::String(items.join(&text(sep))))
}

/// `label .LabelMap "k"`: the value, or "" (Docker's `.Label "k"`).
fn label(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [Value::Map(m) | Value::Object(m), Value::String(k)] => Ok(m
            .get(k)
            .cloned()
            .unwrap_or_else(|| Value::String(String::new()))),
        [_, _] => Ok(Value::String(String::new())),
        _ => Err(FuncError::ExactlyXArgs("Label".into(), 1)),
    }
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(text(one("lower", args)?).to_lowercase()))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(text(one("upper", args)?).to_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn go(t: &str, v: Json) -> String {
        Go::parse(t).unwrap().render(&v).unwrap()
    }

    #[test]
    fn templates_as_docker_users_write_them() {
        let c = json!({"ID": "abc", "State": {"ExitCode": 137, "Running": false},
                       "Args": ["sleep", "10"], "Labels": {"b": "2", "a": "1"}});
        assert_eq!(go("{{.ID}}", c.clone()), "abc");
        assert_eq!(go("{{.State.ExitCode}}", c.clone()), "137");
        assert_eq!(go("{{join .Args \" \"}}", c.clone()), "sleep 10");
        assert_eq!(go("{{json .Labels}}", c.clone()), r#"{"a":"1","b":"2"}"#);
        assert_eq!(go("{{index .Labels \"a\"}}", c.clone()), "1");
        assert_eq!(
            go("{{if .State.Running}}up{{else}}down{{end}}", c.clone()),
            "down"
        );
        assert_eq!(go("{{upper .ID}}", c.clone()), "ABC");
        assert_eq!(go("{{.Labels.zz}}", c.clone()), "<no value>");
        assert!(Go::parse("{{.ID").is_err());
        // Lists and maps as Go prints them.
        assert_eq!(go("{{.Args}}", c.clone()), "[sleep 10]");
        assert_eq!(go("{{.Labels}}", c.clone()), "map[a:1 b:2]");
        let one = json!({"Labels": {"a": "1"}});
        assert_eq!(
            go("{{range $k, $v := .Labels}}{{$k}}={{$v}}{{end}}", one),
            "a=1"
        );
        assert_eq!(go("{{- .ID -}}", c.clone()), "abc");
        assert_eq!(go("{{.Args | json}}", c), r#"["sleep","10"]"#);
    }

    #[test]
    fn a_table_template_has_a_header_and_aligned_columns() {
        let t = Go::parse("table {{.ID}}\\t{{.Names}}").unwrap();
        let rows = [
            json!({"ID": "abc", "Names": "web"}),
            json!({"ID": "abcdef", "Names": "db"}),
        ];
        let header = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        assert_eq!(
            t.lines(&rows, &header).unwrap(),
            "CONTAINER ID   NAMES\nabc            web\nabcdef         db\n"
        );
    }
}
