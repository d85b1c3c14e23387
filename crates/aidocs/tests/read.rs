//! Reading as a coding agent does, on the real Python tutorial: search answers fitted to a
//! token budget (checked with this test's own tokenizer count), and versions resolved
//! honestly with two versions of one tree side by side in one library, and a collection of
//! two libraries searched across both.

mod common;

use aidocs::core::{DocMetadata, Filter, FilterField, FilterValue};
use aidocs::progress::NoProgress;
use aidocs::{IngestRequest, SearchRequest};

fn tokenizer() -> tokenizers::Tokenizer {
    let mut t = tokenizers::Tokenizer::from_file(common::model_dir().join("tokenizer.json")).unwrap();
    t.with_truncation(None).unwrap();
    t.with_padding(None);
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_fits_its_token_budget_and_the_top_section_is_whole_when_it_fits() {
    let data = tempfile::tempdir().unwrap();
    let engine = common::engine(data.path());
    let req = IngestRequest { path: common::python_docs().join("tutorial"), collection: "py".into(), metadata: Default::default(), base_url: None };
    engine.ingest().directory(req, &NoProgress).await.unwrap();
    let tok = tokenizer();
    let count = |t: &str| tok.encode(t, false).unwrap().get_ids().len();
    let queries = [
        "how do I create a virtual environment",
        "catch an exception and re-raise it",
        "what does the else clause of a for loop do",
        "import a module from a package",
        "format a float with two decimals",
        "read a file line by line",
        "list comprehension with a condition",
        "define a class with instance variables",
        "keyword arguments and default values",
        "difference between a tuple and a list",
        "how does the interactive interpreter show the last result",
        "iterate over a dictionary's keys and values",
        "what is a generator",
        "pass a variable number of arguments",
        "write JSON to a file",
        "the standard library module for dates",
        "raise a custom exception class",
        "how are strings sliced",
        "what does __name__ == '__main__' mean",
        "floating point arithmetic is not exact",
    ];
    let budgets = [300, 800, 2_000, 5_000];
    let mut cut_somewhere = false;
    for (i, q) in queries.iter().enumerate() {
        let max = budgets[i % budgets.len()];
        let resp = engine.search(SearchRequest { collection: Some("py".into()), limit: Some(10), ..SearchRequest::new(*q) }).await.unwrap();
        let fitted = engine.fit(&resp, max).await.unwrap();
        let text = fitted.render();
        let own = count(&text);
        assert!(own <= max, "`{q}`: {own} tokens by this test's count, budget {max}");
        assert_eq!(own, fitted.tokens, "`{q}`: the reported count is the rendered text's");
        let top = &fitted.pages[0].sections[0];
        // The top section is whole whenever it fits the budget on its own.
        let whole = engine.section(Some("py"), &top.id).await.unwrap();
        if count(&whole.section.text) + 60 < max {
            assert!(!top.truncated && top.text.trim() == whole.section.text.trim(), "`{q}`: the top section was cut though it fits");
        }
        if fitted.omitted_sections + fitted.truncated_sections > 0 {
            cut_somewhere = true;
            assert!(text.contains("left out") && text.contains(&format!("within {max} tokens")), "{text}");
        }
        // Grouped by page: no page twice.
        let mut urls: Vec<&str> = fitted.pages.iter().map(|p| p.url.as_str()).collect();
        urls.sort();
        urls.dedup();
        assert_eq!(urls.len(), fitted.pages.len(), "`{q}`: a page appears twice");
    }
    assert!(cut_somewhere, "small budgets must have cut some answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_side_by_side_resolve_honestly_and_filter_search() {
    let dir = tempfile::tempdir().unwrap();
    let (v311, v312) = (dir.path().join("3.11"), dir.path().join("3.12"));
    common::copy_pages(&common::python_docs(), &["tutorial/venv.html", "tutorial/errors.html"], &v311);
    common::copy_pages(&common::python_docs(), &["tutorial/venv.html", "tutorial/errors.html"], &v312);
    // The 3.12 copy says something the 3.11 one does not.
    let venv = v312.join("tutorial/venv.html");
    let html = std::fs::read_to_string(&venv).unwrap().replacen("<p>", "<p>Python 3.12 adds the frobnicate option to venv. ", 1);
    std::fs::write(&venv, html).unwrap();
    let engine = common::engine(&dir.path().join("data"));
    for (root, version) in [(&v311, "3.11"), (&v312, "3.12")] {
        let metadata = DocMetadata { version: Some(version.into()), language: Some("python".into()), ..Default::default() };
        let req = IngestRequest { path: root.join("tutorial"), collection: "python".into(), metadata, base_url: None };
        engine.ingest().directory(req, &NoProgress).await.unwrap();
    }

    let libs = engine.libraries().await.unwrap();
    let py = libs.iter().find(|l| l.name == "python").unwrap();
    assert_eq!(py.versions, ["3.11", "3.12"]);
    assert_eq!(py.pages, 4);

    let r = engine.resolve_library("python@3.12", None).await.unwrap();
    assert_eq!((r.library.as_str(), r.version.as_deref()), ("python", Some("3.12")));
    let r = engine.resolve_library("python", Some(">=3.10,<3.12")).await.unwrap();
    assert_eq!(r.version.as_deref(), Some("3.11"));
    let r = engine.resolve_library("python@3.9", None).await.unwrap();
    assert_eq!(r.version, None, "never another version in its place");
    assert!(r.note.contains("3.11") && r.note.contains("3.12") && r.note.contains("no indexed version"), "{}", r.note);
    assert_eq!(engine.resolve_library("python", None).await.unwrap().version.as_deref(), Some("3.12"), "newest by default");
    assert_eq!(engine.default_version("python").await.unwrap().as_deref(), Some("3.12"), "agents search the newest unless they ask");
    assert!(engine.resolve_library("rust@1.80", None).await.is_err());

    for version in ["3.11", "3.12"] {
        let filter = Filter::default().and(FilterField::Version, FilterValue::Keyword(version.into()));
        let resp = engine
            .search(SearchRequest { collection: Some("python".into()), limit: Some(10), filter, ..SearchRequest::new("frobnicate option of venv") })
            .await
            .unwrap();
        assert!(!resp.hits.is_empty());
        assert!(resp.hits.iter().all(|h| h.metadata.version.as_deref() == Some(version)), "{version}: {:?}", resp.hits);
        let frob = resp.hits.iter().any(|h| h.snippet.contains("frobnicate"));
        assert_eq!(frob, version == "3.12", "{version}");
    }

    // No version asked: the newest, and the answer says so; all versions on request.
    let plain = SearchRequest { collection: Some("python".into()), limit: Some(10), ..SearchRequest::new("frobnicate option of venv") };
    let resp = engine.search(plain.clone()).await.unwrap();
    assert_eq!(resp.default_version.as_deref(), Some("3.12"));
    assert!(!resp.hits.is_empty() && resp.hits.iter().all(|h| h.metadata.version.as_deref() == Some("3.12")), "{:?}", resp.hits);
    let all = engine.search(SearchRequest { all_versions: true, ..plain.clone() }).await.unwrap();
    assert_eq!(all.default_version, None);
    let seen: std::collections::BTreeSet<_> = all.hits.iter().filter_map(|h| h.metadata.version.clone()).collect();
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["3.11", "3.12"], "all_versions searches both");
    let both = Filter::default().and(FilterField::Version, FilterValue::AnyKeyword(vec!["3.11".into(), "3.12".into()]));
    assert_eq!(engine.search(SearchRequest { filter: both, ..plain.clone() }).await.unwrap().default_version, None, "a version filter is the caller's choice");
    let star = engine.search(SearchRequest { collection: Some("*".into()), ..plain.clone() }).await.unwrap();
    assert!(star.hits.iter().all(|h| h.metadata.version.as_deref() == Some("3.12")), "a search across libraries takes each at its newest");

    // Removing one version leaves the other.
    let n = engine.collections().delete_version("python", "3.11").await.unwrap();
    assert!(n > 0);
    assert_eq!(engine.libraries().await.unwrap().iter().find(|l| l.name == "python").unwrap().versions, ["3.12"]);
    assert_eq!(engine.default_version("python").await.unwrap(), None, "one version left: no default filter, the cache was dropped");
    assert_eq!(engine.search(plain).await.unwrap().default_version, None);
}

/// Two libraries in one collection (two `framework` values), each at its own version: the
/// version numbers of different libraries are not comparable, so a search without a version
/// searches both, never only the library whose number sorts last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_of_several_libraries_is_searched_across_all_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let pages = [
        ("web", "views.md", "# Views\n\n## Error pages\n\nA custom handler renders the page shown when a URL matches nothing.\n"),
        ("vcs", "bisect.md", "# Bisect\n\n## Finding a regression\n\nA binary search over the history finds the commit that introduced a bug.\n"),
    ];
    let engine = common::engine(&dir.path().join("data"));
    for ((tree, file, text), (framework, version)) in pages.into_iter().zip([("django", "3.2"), ("git", "2.39")]) {
        let root = dir.path().join(tree);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join(file), text).unwrap();
        let metadata = DocMetadata { framework: Some(framework.into()), version: Some(version.into()), ..Default::default() };
        engine.ingest().directory(IngestRequest { path: root, collection: "docs".into(), metadata, base_url: None }, &NoProgress).await.unwrap();
    }
    assert_eq!(engine.default_version("docs").await.unwrap(), None, "no version of one library stands for another");
    let resp = engine
        .search(SearchRequest { collection: Some("docs".into()), limit: Some(10), ..SearchRequest::new("find the commit that introduced a bug by binary search") })
        .await
        .unwrap();
    assert_eq!(resp.default_version, None);
    assert_eq!(resp.hits[0].metadata.framework.as_deref(), Some("git"), "{:?}", resp.hits);
    let frameworks: std::collections::BTreeSet<_> = resp.hits.iter().filter_map(|h| h.metadata.framework.clone()).collect();
    assert_eq!(frameworks.into_iter().collect::<Vec<_>>(), ["django", "git"], "both libraries are searched");
    // A version asked for still filters.
    let filter = Filter::default().and(FilterField::Version, FilterValue::Keyword("3.2".into()));
    let resp = engine.search(SearchRequest { collection: Some("docs".into()), filter, ..SearchRequest::new("binary search") }).await.unwrap();
    assert!(!resp.hits.is_empty() && resp.hits.iter().all(|h| h.metadata.framework.as_deref() == Some("django")), "{:?}", resp.hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sections_and_pages_read_whole_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::copy_pages(&common::python_docs(), &["tutorial/errors.html"], &docs);
    let engine = common::engine(&dir.path().join("data"));
    let base = "https://docs.python.org/3.11/tutorial";
    let req = IngestRequest { path: docs.join("tutorial"), collection: "docs".into(), metadata: Default::default(), base_url: Some(base.into()) };
    engine.ingest().directory(req, &NoProgress).await.unwrap();
    let page = format!("{base}/errors.html");

    let s = engine.section(None, &format!("{page}#handling-exceptions")).await.unwrap();
    assert_eq!(s.section.url, format!("{page}#handling-exceptions"));
    assert!(s.section.text.contains("try"), "{}", s.section.text);
    let (prev, next) = (s.previous.clone().unwrap(), s.next.clone().unwrap());
    assert!(prev.url.starts_with(&page) && next.url.starts_with(&page));
    // The neighbour's id reads the neighbour, whose previous is where we came from.
    let n = engine.section(None, &next.id).await.unwrap();
    assert_eq!(n.previous.unwrap().url, s.section.url);
    assert!(engine.section(None, &format!("{page}#nope")).await.unwrap_err().to_string().contains("#nope"));
    assert!(engine.section(None, &page).await.is_err(), "a page is not a section");

    // The whole page, paged by cursor, is every section once, in order.
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let p = engine.page(None, &page, cursor, 600).await.unwrap();
        assert!(p.tokens <= 600, "{}", p.tokens);
        seen.extend(p.sections.iter().map(|s| s.id.clone()));
        match p.next_cursor {
            Some(c) => {
                assert!(c > cursor);
                cursor = c;
            }
            None => break,
        }
    }
    let whole = engine.page(None, &page, 0, 100_000).await.unwrap();
    assert_eq!(whole.next_cursor, None);
    let all: Vec<String> = whole.sections.iter().map(|s| s.id.clone()).collect();
    assert_eq!(seen, all);
    assert!(all.len() > 5);
    assert!(engine.page(None, "https://nowhere.invalid/x.html", 0, 1000).await.is_err());
}
