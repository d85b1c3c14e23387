//! Payload filters: a closed set of filterable fields and their values.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The payload fields a search may filter on. Closed set: each is indexed in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterField {
    Language,
    Framework,
    DocType,
    Version,
    /// RFC 3339 timestamp; filters take ranges (`gte`/`lte`).
    LastUpdated,
    /// Integer 1..=5.
    DifficultyLevel,
    /// Source id of the document (exact).
    Source,
    /// The document's path relative to its ingest root (exact): a page by its link.
    Path,
}

impl FilterField {
    pub const ALL: [FilterField; 8] = [
        Self::Language,
        Self::Framework,
        Self::DocType,
        Self::Version,
        Self::LastUpdated,
        Self::DifficultyLevel,
        Self::Source,
        Self::Path,
    ];

    /// Payload key in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Language => "language",
            Self::Framework => "framework",
            Self::DocType => "doc_type",
            Self::Version => "version",
            Self::LastUpdated => "last_updated",
            Self::DifficultyLevel => "difficulty_level",
            Self::Source => "source",
            Self::Path => "path",
        }
    }

    /// How the store indexes this field.
    pub fn kind(self) -> FieldKind {
        match self {
            Self::LastUpdated => FieldKind::Datetime,
            Self::DifficultyLevel => FieldKind::Integer,
            _ => FieldKind::Keyword,
        }
    }
}

/// Index type of a filter field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Keyword,
    Integer,
    Datetime,
}

impl fmt::Display for FilterField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FilterField {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|f| f.as_str()).collect();
                format!("unknown filter field `{s}` (known: {})", known.join(", "))
            })
    }
}

/// One condition value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FilterValue {
    /// Field equals this keyword.
    Keyword(String),
    /// Field equals any of these keywords.
    AnyKeyword(Vec<String>),
    /// Integer equals.
    Integer(i64),
    /// Integer is any of these.
    AnyInteger(Vec<i64>),
    /// Range (inclusive) on an integer field.
    IntRange { gte: Option<i64>, lte: Option<i64> },
    /// Range (inclusive) on a datetime field, RFC 3339 bounds.
    DateRange { gte: Option<String>, lte: Option<String> },
}

/// A conjunction of field conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    pub must: Vec<(FilterField, FilterValue)>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.must.is_empty()
    }
    pub fn and(mut self, field: FilterField, value: FilterValue) -> Self {
        self.must.push((field, value));
        self
    }

    /// How many values the filter holds, list items counted one by one (its cost to the
    /// store grows with this).
    pub fn value_count(&self) -> usize {
        self.must
            .iter()
            .map(|(_, v)| match v {
                FilterValue::AnyKeyword(k) => k.len(),
                FilterValue::AnyInteger(i) => i.len(),
                _ => 1,
            })
            .sum()
    }

    /// The longest keyword value, in characters.
    pub fn longest_keyword(&self) -> usize {
        let keywords = self.must.iter().flat_map(|(_, v)| match v {
            FilterValue::Keyword(k) => std::slice::from_ref(k),
            FilterValue::AnyKeyword(k) => k.as_slice(),
            _ => &[],
        });
        keywords.map(|k| k.chars().count()).max().unwrap_or(0)
    }
}

/// Longest keyword a filter may compare against; payload keywords are short labels.
pub const MAX_FILTER_KEYWORD_CHARS: usize = 256;
