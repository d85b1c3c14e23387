//! Property-based fuzzing of what the outside world hands the composition crate: filters
//! (JSON and CLI pairs) and config files (TOML). Invariants: nothing panics; a bad value is
//! an `invalid_request` naming what was wrong, never an internal error.

use proptest::prelude::*;
use serde_json::Value;

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![Just("python"), Just("2026-01-01"), Just("2026-13-45T00:00:00Z"), Just(""), Just("\u{0}")].prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("language".to_owned()), Just("framework".to_owned()), Just("version".to_owned()), Just("doc_type".to_owned()),
            Just("difficulty_level".to_owned()), Just("last_updated".to_owned()), Just("gte".to_owned()), Just("lte".to_owned()),
            "[a-z_]{0,10}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn json_filters_are_parsed_or_refused_clearly(v in json()) {
        if let Err(e) = aidocs::filters::from_json(&v) {
            prop_assert_eq!(e.code(), aidocs::ErrorCode::InvalidRequest, "{}", e);
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn cli_filter_pairs_are_parsed_or_refused_clearly(pairs in prop::collection::vec("[a-z_]{0,16}(=|<=|>=|<|>|!=|==)?[ -~]{0,16}", 0..6)) {
        if let Err(e) = aidocs::filters::from_pairs(&pairs) {
            prop_assert_eq!(e.code(), aidocs::ErrorCode::InvalidRequest, "{}", e);
        }
    }

    #[test]
    fn config_files_load_or_fail_with_a_message(lines in prop::collection::vec(prop_oneof![
        Just("[server]".to_owned()), Just("[search]".to_owned()), Just("[[auth.keys]]".to_owned()), Just("[crawl]".to_owned()),
        Just("[ingest]".to_owned()), Just("template = \"production\"".to_owned()), Just("bind = \"0.0.0.0:1\"".to_owned()),
        Just("max_pages = 0".to_owned()), Just("default_limit = 1000000".to_owned()), Just("allowed_roots = [\"rel\"]".to_owned()),
        Just("sha256 = \"zz\"".to_owned()), Just("scopes = [\"root\"]".to_owned()), Just("name = \"k\"".to_owned()),
        "[a-z_]{1,12} = (\"[ -~]{0,8}\"|[0-9]{1,20}|true|\\[\\]|\\{\\})",
        "[ -~]{0,30}",
    ], 0..20)) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, lines.join("\n")).unwrap();
        match aidocs::Config::load(&aidocs::ConfigSource { file: Some(f), ..Default::default() }) {
            Ok((cfg, _)) => prop_assert!(cfg.validate().is_ok(), "a loaded config is valid"),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
