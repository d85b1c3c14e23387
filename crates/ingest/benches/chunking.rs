//! Parsing + chunking throughput on a real HTML page (Python tutorial, Debian python3.11-doc)
//! or a synthetic page when it is absent. Tokens are counted per whitespace word here, so
//! this measures the parser and chunker, not the tokenizer.

use aidocs_benchkit::{Report, Table, percentile, time_ms};
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

    let mib = html.len() as f64 / (1024.0 * 1024.0);
    let parse_ms = percentile(&time_ms(200, |_| drop(parse(DocFormat::Html, &html))), 50.0);
    let chunk_ms = percentile(&time_ms(200, |_| drop(chunker.chunk("T", &doc.sections))), 50.0);
    let chunks = chunker.chunk("T", &doc.sections).len();
    let mut report = Report::new("chunking", "Parsing and chunking");
    report.note(format!(
        "One real page, the Python tutorial's `controlflow.html` ({:.0} KB of HTML, {chunks} chunks); \
         tokens counted per word, so this measures the parser and the chunker, not the tokenizer. \
         Medians of 200 runs.",
        html.len() as f64 / 1024.0
    ));
    let mut t = Table::new("Per page", &[("ms per page", 2), ("MiB/s of HTML", 1)]).ratio_of(0);
    t.values("parse HTML into sections", &[parse_ms, mib / (parse_ms / 1e3)]);
    t.values("chunk the parsed sections", &[chunk_ms, mib / (chunk_ms / 1e3)]);
    report.table(t);

    // PDF: pages/s of the whole parser against lopdf's own text extraction of every page,
    // the floor it builds on (same file, same run).
    let pdf_path = "/usr/share/doc/libtasn1-doc/libtasn1.pdf";
    if let Ok(bytes) = std::fs::read(pdf_path) {
        let pages = lopdf::Document::load_mem(&bytes).map(|d| d.get_pages().len()).unwrap_or(0);
        let extract_ms = percentile(
            &time_ms(20, |_| {
                let d = lopdf::Document::load_mem(&bytes).unwrap();
                for n in d.get_pages().keys() {
                    drop(d.extract_text(&[*n]));
                }
            }),
            50.0,
        );
        let parse_ms = percentile(&time_ms(20, |_| drop(aidocs_ingest::parse_bytes(DocFormat::Pdf, &bytes))), 50.0);
        let sections = aidocs_ingest::parse_bytes(DocFormat::Pdf, &bytes).map(|d| d.sections.len()).unwrap_or(0);
        let mut t = Table::new(&format!("PDF (Debian's libtasn1.pdf, {pages} pages, {sections} sections; medians of 20 runs)"), &[("ms per file", 1), ("pages/s", 0)]).ratio_of(1);
        t.values("lopdf: load and extract every page's text", &[extract_ms, pages as f64 / (extract_ms / 1e3)]);
        t.values("aidocs: the same, cleaned and cut at the outline into sections", &[parse_ms, pages as f64 / (parse_ms / 1e3)]);
        report.table(t);
    }
    report.finish().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
