//! Pre-split records (BEIR documents, API records): written as one point each, without
//! parsing or chunking.

use super::IngestService;
use crate::error::{Error, Result};
use aidocs_core::{ChunkPayload, DocMetadata, Point};
use aidocs_ingest::{point_id, sha256_hex};
use serde::{Deserialize, Serialize};

/// A pre-split unit of text to index as one point (a BEIR document, an API record): no
/// parsing or chunking, the caller owns the split. The point id derives from `id`, so
/// writing the same id again replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub metadata: DocMetadata,
}

impl Record {
    /// What both encoders see: the title, then the text (BEIR's convention).
    pub fn encoder_text(&self) -> String {
        if self.title.is_empty() { self.text.clone() } else { format!("{} {}", self.title, self.text) }
    }
}

impl IngestService {
    /// Embed and write `records` (one point each) into `collection`, created if absent.
    /// Returns the number of points written.
    pub async fn records(&self, collection: &str, source: &str, records: Vec<Record>) -> Result<usize> {
        let texts: Vec<String> = records.iter().map(Record::encoder_text).collect();
        let dense = self.engine.embed(&texts).await?;
        self.embedded_records(collection, source, records.into_iter().zip(dense).collect()).await
    }

    /// Write records whose dense vectors the caller already has (e.g. from a cache keyed by
    /// this engine's model id). Vectors must have the collection's dimensions.
    pub async fn embedded_records(&self, collection: &str, source: &str, records: Vec<(Record, Vec<f32>)>) -> Result<usize> {
        let engine = &self.engine;
        let collection = engine.ensure_collection(collection).await?;
        let n = records.len();
        let sparse = engine.sparse().clone();
        let source = source.to_owned();
        let points = tokio::task::spawn_blocking(move || {
            records
                .into_iter()
                .map(|(r, dense)| {
                    let text = r.encoder_text();
                    let content_hash = sha256_hex(&text);
                    Point {
                        id: point_id(&source, 0, &r.id),
                        sparse: sparse.encode_doc(&text),
                        dense,
                        payload: ChunkPayload {
                            source: source.clone(),
                            path: r.id,
                            url: r.url,
                            title: r.title,
                            anchor: String::new(),
                            heading_path: Vec::new(),
                            text: r.text,
                            chunk_index: 0,
                            lead: false,
                            doc_hash: content_hash.clone(),
                            content_hash,
                            meta: r.metadata,
                        },
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Error::Internal(format!("encode task failed: {e}")))?;
        for chunk in points.chunks(engine.config().ingest.batch_size.max(1)).map(<[Point]>::to_vec) {
            engine.store().upsert(&collection, chunk).await?;
        }
        engine.invalidate_search(&collection).await;
        Ok(n)
    }
}
