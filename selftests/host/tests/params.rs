//! The module's parameter table has one source, `param_table!` in
//! rust/params.rs (name: default, min, max, "help";), which feeds the
//! `module!` declaration and the module's range checks. The README's
//! parameter table must say the same: every parameter of the source has a
//! README row with the same default and a range cell that starts with
//! `min..max`, and every README row is a parameter of the source (or one of
//! the C string parameters that rust/params.rs names, `scenario` and
//! `evfds`). On a mismatch the test prints the rows the README should have.

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
struct Param {
    name: String,
    default: i64,
    min: i64,
    max: i64,
    help: String,
}

fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("selftests/host is two levels below the top")
}

/// The rows of `param_table!`: `name: default, min, max, "help";`.
fn source_table(text: &str) -> Vec<Param> {
    let start = text
        .find("macro_rules! param_table")
        .expect("rust/params.rs has no `macro_rules! param_table`");
    let body = &text[start..];
    let body = &body[..body.find("\n}\n").unwrap_or(body.len())];
    let mut out = Vec::new();
    for line in body.lines() {
        let l = line.trim();
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            continue;
        }
        let Some(rest) = rest.trim().strip_suffix(';') else {
            continue;
        };
        let mut parts = rest.splitn(4, ',');
        let mut num = || -> Option<i64> { parts.next()?.trim().parse().ok() };
        let (Some(default), Some(min), Some(max)) = (num(), num(), num()) else {
            continue;
        };
        let help = parts
            .next()
            .map(|h| h.trim().trim_matches('"').to_string())
            .unwrap_or_default();
        out.push(Param {
            name: name.to_string(),
            default,
            min,
            max,
            help,
        });
    }
    out
}

/// The README's parameter table: `| `name` | default | range | meaning |`
/// rows under the header `| parameter | default | range | meaning |`.
fn readme_table(text: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if cells.first() == Some(&"parameter") && cells.get(2) == Some(&"range") {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if !line.trim_start().starts_with('|') {
            break;
        }
        if cells.len() < 3 || cells[0].starts_with("---") {
            continue;
        }
        let name = cells[0].trim_matches('`').to_string();
        out.insert(name, (cells[1].to_string(), cells[2].to_string()));
    }
    out
}

fn expected_row(p: &Param) -> String {
    format!(
        "| `{}` | {} | {}..{} | {} |",
        p.name, p.default, p.min, p.max, p.help
    )
}

/// Mismatches between the source table and the README rows.
fn compare(
    src: &[Param],
    readme: &BTreeMap<String, (String, String)>,
    c_params: &[&str],
) -> Vec<String> {
    let mut bad = Vec::new();
    for p in src {
        match readme.get(&p.name) {
            None => bad.push(format!("{}: no README row", p.name)),
            Some((d, r)) => {
                if d.parse::<i64>().ok() != Some(p.default) {
                    bad.push(format!(
                        "{}: README default {d:?}, source {}",
                        p.name, p.default
                    ));
                }
                let range = format!("{}..{}", p.min, p.max);
                let first = r.split_whitespace().next().unwrap_or("");
                if first.trim_end_matches(',') != range {
                    bad.push(format!(
                        "{}: README range {r:?} does not start with {range}",
                        p.name
                    ));
                }
            }
        }
    }
    for name in readme.keys() {
        if !src.iter().any(|p| &p.name == name) && !c_params.contains(&name.as_str()) {
            bad.push(format!(
                "{name}: a README row for no parameter of rust/params.rs"
            ));
        }
    }
    bad
}

#[test]
fn readme_parameter_table_matches_the_module_source() {
    let src_text = std::fs::read_to_string(top().join("rust/params.rs")).expect("rust/params.rs");
    let readme_text = std::fs::read_to_string(top().join("README.md")).expect("README.md");
    let src = source_table(&src_text);
    assert!(
        src.len() >= 20,
        "parsed only {} rows of param_table!",
        src.len()
    );
    // The C string parameters rust/params.rs names (no integer range).
    let c_params: Vec<&str> = ["scenario", "evfds"]
        .into_iter()
        .filter(|n| src_text.contains(&format!("`{n}`")))
        .collect();
    let readme = readme_table(&readme_text);
    assert!(
        !readme.is_empty(),
        "README.md has no `| parameter | default | range | meaning |` table"
    );
    let bad = compare(&src, &readme, &c_params);
    assert!(
        bad.is_empty(),
        "README.md's parameter table disagrees with rust/params.rs:\n  {}\nrows from the source:\n{}",
        bad.join("\n  "),
        src.iter().map(expected_row).collect::<Vec<_>>().join("\n")
    );
}

/// The parsers and the comparison on small inputs, so that the check above
/// cannot pass by parsing nothing.
#[test]
fn the_check_itself() {
    let src = source_table(
        "macro_rules! param_table {\n    ($cb:ident) => {\n        $cb! {\n            \
         epfd: -1, 0, 2147483647, \"epoll fd (required)\";\n            \
         hog_cpu: 0, -1, 4095, \"hog CPU, -1 unbound\";\n        }\n    };\n}\n",
    );
    assert_eq!(
        src,
        [
            Param {
                name: "epfd".into(),
                default: -1,
                min: 0,
                max: 2147483647,
                help: "epoll fd (required)".into()
            },
            Param {
                name: "hog_cpu".into(),
                default: 0,
                min: -1,
                max: 4095,
                help: "hog CPU, -1 unbound".into()
            }
        ]
    );
    let readme = readme_table(
        "text\n\n| parameter | default | range | meaning |\n|---|---|---|---|\n\
         | `scenario` | inversion | inversion, stall | what to run |\n\
         | `epfd` | -1 | 0..2147483647 (required) | epoll fd |\n\
         | `hog_cpu` | 0 | -1..4095 | hog CPU |\n\nafter\n| `x` | 1 | 1..2 | not in the table |\n",
    );
    assert_eq!(readme.len(), 3);
    assert!(compare(&src, &readme, &["scenario"]).is_empty());
    let mut wrong = readme.clone();
    wrong.insert("hog_cpu".into(), ("1".into(), "-1, online CPU".into()));
    wrong.insert("stale".into(), ("0".into(), "0..1".into()));
    wrong.remove("epfd");
    let bad = compare(&src, &wrong, &["scenario"]);
    assert_eq!(bad.len(), 4, "{bad:?}");
    assert!(compare(&src, &readme, &[])
        .iter()
        .any(|b| b.starts_with("scenario")));
}
