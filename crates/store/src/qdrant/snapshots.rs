//! Qdrant collection snapshots: create, list and delete over gRPC; download and recover
//! (upload) over REST, which is the only place Qdrant serves snapshot files. Both REST calls
//! carry the API key.

use super::{QdrantStore, backend, rest_url_of};
use aidocs_core::{NativeSnapshots, SnapshotInfo, StoreError};
use async_trait::async_trait;
use qdrant_client::qdrant as pb;
use std::path::Path;

/// The response if it succeeded, else an error with the method, URL, status and the start
/// of the server's explanation.
async fn http_ok(method: &str, url: &str, resp: reqwest::Response) -> Result<reqwest::Response, StoreError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    Err(backend(format!("{method} {url}: HTTP {status}: {}", body.chars().take(300).collect::<String>())))
}

fn info_of(d: pb::SnapshotDescription) -> SnapshotInfo {
    SnapshotInfo {
        name: d.name,
        size: d.size.max(0) as u64,
        created_at: d
            .creation_time
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
            .map(|d| d.to_rfc3339())
            .unwrap_or_default(),
        checksum: d.checksum,
    }
}

impl QdrantStore {
    fn rest_url(&self) -> String {
        self.inner.cfg.rest_url.clone().unwrap_or_else(|| rest_url_of(&self.inner.cfg.url))
    }

    fn rest(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.inner.cfg.api_key {
            Some(k) if !k.is_empty() => req.header("api-key", k),
            _ => req,
        }
    }

    pub async fn list_snapshots(&self, collection: &str) -> Result<Vec<SnapshotInfo>, StoreError> {
        let req = pb::ListSnapshotsRequest { collection_name: collection.to_owned() };
        let r = self
            .inner
            .call("list snapshots", collection, |c| {
                let req = req.clone();
                async move { c.snapshots.clone().list(req).await }
            })
            .await?;
        let mut out: Vec<SnapshotInfo> = r.snapshot_descriptions.into_iter().map(info_of).collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
        Ok(out)
    }

}

#[async_trait]
impl NativeSnapshots for QdrantStore {
    /// Snapshot a collection (or the collection an alias points at) on the server.
    async fn create_snapshot(&self, collection: &str) -> Result<SnapshotInfo, StoreError> {
        let collection = aidocs_core::VectorStore::resolve(self, collection).await?;
        let req = pb::CreateSnapshotRequest { collection_name: collection.clone() };
        let r = self
            .inner
            .call("create snapshot", &collection, |c| {
                let req = req.clone();
                async move { c.snapshots.clone().create(req).await }
            })
            .await?;
        r.snapshot_description.map(info_of).ok_or_else(|| backend("Qdrant created a snapshot but did not describe it"))
    }

    async fn delete_snapshot(&self, collection: &str, name: &str) -> Result<(), StoreError> {
        let req = pb::DeleteSnapshotRequest { collection_name: collection.to_owned(), snapshot_name: name.to_owned() };
        self.inner
            .call("delete snapshot", collection, |c| {
                let req = req.clone();
                async move { c.snapshots.clone().delete(req).await }
            })
            .await?;
        Ok(())
    }

    /// Download a snapshot to `dest`: written to `dest.part`, checked against the size the
    /// server reported, then renamed, so `dest` is either complete or absent. Returns bytes.
    async fn download_snapshot(&self, collection: &str, snapshot: &SnapshotInfo, dest: &Path) -> Result<u64, StoreError> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let url = format!("{}/collections/{collection}/snapshots/{}", self.rest_url(), snapshot.name);
        let resp = self.rest(self.inner.http.get(&url)).send().await.map_err(|e| backend(format!("GET {url}: {e}")))?;
        let resp = http_ok("GET", &url, resp).await?;
        let part = dest.with_extension("part");
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| StoreError::Io { path: p, source }
        };
        let mut file = tokio::fs::File::create(&part).await.map_err(io(&part))?;
        let mut bytes = 0u64;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| backend(format!("GET {url}: {e}")))?;
            file.write_all(&chunk).await.map_err(io(&part))?;
            bytes += chunk.len() as u64;
        }
        file.sync_all().await.map_err(io(&part))?;
        drop(file);
        if snapshot.size > 0 && bytes != snapshot.size {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(backend(format!("snapshot {} is {} bytes but the download gave {bytes}", snapshot.name, snapshot.size)));
        }
        tokio::fs::rename(&part, dest).await.map_err(io(dest))?;
        Ok(bytes)
    }

    /// Recover `collection` on the server from a snapshot file (uploaded; the collection is
    /// created or replaced with the snapshot's data and config). A real Qdrant keeps the
    /// uploaded file among the collection's snapshots, so it is uploaded under a name of its
    /// own and deleted once the recovery is over, whatever its outcome.
    async fn recover_snapshot(&self, collection: &str, file: &Path) -> Result<(), StoreError> {
        crate::edge::validate_name(collection)?;
        // Streamed from disk: snapshots can be far larger than memory.
        let io = |source| StoreError::Io { path: file.display().to_string(), source };
        let f = tokio::fs::File::open(file).await.map_err(io)?;
        let len = f.metadata().await.map_err(io)?.len();
        let upload = format!("aidocs-restore-{}.snapshot", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"));
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::from(f), len).file_name(upload.clone());
        let form = reqwest::multipart::Form::new().part("snapshot", part);
        let url = format!("{}/collections/{collection}/snapshots/upload?wait=true&priority=snapshot", self.rest_url());
        let sent = self.rest(self.inner.http.post(&url)).multipart(form).send().await.map_err(|e| backend(format!("POST {url}: {e}")));
        let outcome = match sent {
            Ok(resp) => http_ok("POST", &url, resp).await.map(drop),
            Err(e) => Err(e),
        };
        self.inner.dims.lock().unwrap().clear();
        if self.list_snapshots(collection).await.is_ok_and(|l| l.iter().any(|s| s.name == upload))
            && let Err(e) = self.delete_snapshot(collection, &upload).await
        {
            tracing::warn!(collection, snapshot = %upload, error = %e, "could not delete the uploaded snapshot from the Qdrant server");
        }
        outcome
    }
}
