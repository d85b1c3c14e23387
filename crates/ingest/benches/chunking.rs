//! Parsing + chunking throughput on a real HTML page (Python tutorial, Debian python3.11-doc)
//! or a synthetic page when it is absent. Tokens are counted per whitespace word here, so
//! this measures the parser and chunker, not the tokenizer.

use aidocs_core::TokenCounter;
use aidocs_ingest::{Chunker, ChunkerConfig, DocFormat, parse};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

struct Words;
impl TokenCounter for Words {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

fn page() -> String {
    std::fs::read_to_string("/usr/share/doc/python3.11/html/tutorial/controlflow.html").unwrap_or_else(|_| {
        let body: String = (0..200)
            .map(|i| format!("<section id=\"s{i}\"><h2>Section {i}</h2><p>{}</p><pre>let x = {i};\nprintln!(\"{{x}}\");</pre></section>", "Prose sentence here. ".repeat(30)))
            .collect();
        format!("<html><body><main>{body}</main></body></html>")
    })
}

fn bench(c: &mut Criterion) {
    let html = page();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Bytes(html.len() as u64));
    g.bench_function("parse_html", |b| b.iter(|| parse(DocFormat::Html, &html)));
    let doc = parse(DocFormat::Html, &html);
    let chunker = Chunker::new(ChunkerConfig::default(), &Words);
    g.bench_function("chunk_page", |b| b.iter(|| chunker.chunk("T", &doc.sections)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
