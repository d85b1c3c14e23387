//! [`Target`]: where an admin command runs, here on the local data dir or on a running
//! aidocs-server (`--server`), behind one typed interface. Both paths take the same request
//! types and return the same report types: the remote one sends the `aidocs-http` wire types
//! and decodes the server's answer (and its error `code`) through `AdminClient`, so no
//! command builds or picks apart JSON by hand.

use super::{Ctx, RemoteArgs, open_engine};
use aidocs::backup::{
    BackupKind, BackupReport, DrillReport, NativeBackupReport, NativeEntry, NativeRestoreReport, PruneReport, RestoreReport, RestoreRequest, Retention,
    VerifyReport,
};
use aidocs::progress::IngestProgress;
use aidocs::rollout::BlueGreenRequest;
use aidocs::rollout_state::Deployment;
use aidocs::{Config, Engine, IngestReport};
use aidocs_http::client::AdminClient;
use aidocs_http::wire;

/// Where an admin command runs (closed set).
pub enum Target {
    /// On the data dir of the local config. The engine (model, store lock) is opened only by
    /// the operations that need it: listing and verifying backups read the repository alone.
    Local(Box<Config>),
    /// On a running server, through its admin API.
    Remote(AdminClient),
}

impl Target {
    /// The server of `--server` when given (the local config is not read), else the data dir.
    pub fn new(remote: &RemoteArgs, ctx: &Ctx) -> anyhow::Result<Self> {
        Ok(match remote.client()? {
            Some(client) => Self::Remote(client),
            None => Self::Local(Box::new(ctx.config()?)),
        })
    }

    /// The data dir of `cfg`.
    pub fn local(cfg: Config) -> Self {
        Self::Local(Box::new(cfg))
    }

    /// The local config, or `None` on a server (which applies its own).
    pub fn config(&self) -> Option<&Config> {
        match self {
            Self::Local(cfg) => Some(cfg),
            Self::Remote(_) => None,
        }
    }

    fn engine(cfg: &Config) -> anyhow::Result<Engine> {
        open_engine(cfg.clone())
    }

    /// Re-crawl every web source of `collection` (`None`: the default collection).
    pub async fn sync(&self, collection: Option<String>, progress: &dyn IngestProgress) -> anyhow::Result<Vec<IngestReport>> {
        Ok(match self {
            Self::Local(cfg) => {
                let collection = collection.unwrap_or_else(|| cfg.search.default_collection.clone());
                Self::engine(cfg)?.ingest().releasing(aidocs::core::Release::Model).sync(&collection, progress).await?
            }
            Self::Remote(c) => c.post_as::<wire::SyncResponse>("/v1/admin/sync", &wire::SyncBody { collection }).await?.reports,
        })
    }

    /// Build green from a tree, validate it, switch the alias.
    pub async fn deploy_blue_green(&self, req: BlueGreenRequest, progress: &dyn IngestProgress) -> anyhow::Result<Deployment> {
        Ok(match self {
            Self::Local(cfg) => Self::engine(cfg)?.rollout().deploy_blue_green(req, progress).await?,
            Self::Remote(c) => c.post_as("/v1/admin/deploy/blue-green", &wire::BlueGreenBody::from(req)).await?,
        })
    }

    /// A portable archive backup of `collection`.
    pub async fn backup_create(&self, collection: Option<String>, kind: BackupKind) -> anyhow::Result<BackupReport> {
        Ok(match self {
            Self::Local(cfg) => Self::engine(cfg)?.backup().create(collection.as_deref(), kind).await?,
            Self::Remote(c) => c.post_as("/v1/admin/backups", &wire::BackupCreateBody { collection, kind: Some(kind.into()), native: false }).await?,
        })
    }

    /// The Qdrant server's own snapshot of `collection`.
    pub async fn backup_create_native(&self, collection: Option<String>) -> anyhow::Result<NativeBackupReport> {
        Ok(match self {
            Self::Local(cfg) => Self::engine(cfg)?.backup().create_native(collection.as_deref()).await?,
            Self::Remote(c) => c.post_as("/v1/admin/backups", &wire::BackupCreateBody { collection, kind: None, native: true }).await?,
        })
    }

    /// Archive backups and native snapshots, oldest first.
    pub async fn backup_list(&self, collection: Option<&str>) -> anyhow::Result<wire::BackupList> {
        Ok(match self {
            Self::Local(cfg) => {
                let repo = aidocs::backup::repository(cfg)?;
                let backups = repo.summaries(collection).await.map_err(aidocs::Error::from)?;
                let native = repo.native_entries(collection).await.map_err(aidocs::Error::from)?;
                wire::BackupList { backups, native }
            }
            Self::Remote(c) => match collection {
                Some(col) => c.get_as(&format!("/v1/admin/backups?collection={}", url_component(col))).await?,
                None => c.get_as("/v1/admin/backups").await?,
            },
        })
    }

    /// Check an archive backup and the chain it builds on.
    pub async fn backup_verify(&self, id: &str) -> anyhow::Result<VerifyReport> {
        Ok(match self {
            Self::Local(cfg) => aidocs::backup::repository(cfg)?.verify(id).await.map_err(aidocs::Error::from)?,
            Self::Remote(c) => c.post_as(&format!("/v1/admin/backups/{}/verify", url_component(id)), &()).await?,
        })
    }

    /// Check a native snapshot.
    pub async fn backup_verify_native(&self, id: &str) -> anyhow::Result<NativeEntry> {
        Ok(match self {
            Self::Local(cfg) => aidocs::backup::repository(cfg)?.verify_native(id).await.map_err(aidocs::Error::from)?.0,
            Self::Remote(c) => c.post_as(&format!("/v1/admin/backups/{}/verify", url_component(id)), &()).await?,
        })
    }

    pub async fn backup_restore(&self, id: &str, req: RestoreRequest) -> anyhow::Result<RestoreReport> {
        Ok(match self {
            Self::Local(cfg) => Self::engine(cfg)?.backup().restore(id, req).await?,
            Self::Remote(c) => c.post_as(&format!("/v1/admin/backups/{}/restore", url_component(id)), &wire::RestoreBody::from(req)).await?,
        })
    }

    pub async fn backup_restore_native(&self, id: &str, req: RestoreRequest) -> anyhow::Result<NativeRestoreReport> {
        Ok(match self {
            Self::Local(cfg) => Self::engine(cfg)?.backup().restore_native(id, req).await?,
            Self::Remote(c) => c.post_as(&format!("/v1/admin/backups/{}/restore", url_component(id)), &wire::RestoreBody::from(req)).await?,
        })
    }

    /// Apply a retention policy (`None`: the configured one).
    pub async fn backup_prune(&self, policy: Option<Retention>) -> anyhow::Result<PruneReport> {
        Ok(match self {
            Self::Local(cfg) => Self::engine(cfg)?.backup().prune(policy).await?,
            Self::Remote(c) => {
                let body = policy.map_or_else(wire::PruneBody::default, |p| wire::PruneBody { keep_last: p.keep_last, keep_days: p.keep_days });
                c.post_as("/v1/admin/backups/prune", &body).await?
            }
        })
    }

    /// Restore the newest backup into a temporary collection, check it, delete it.
    pub async fn backup_drill(&self, collection: Option<String>) -> anyhow::Result<DrillReport> {
        Ok(match self {
            Self::Local(cfg) => Self::engine(cfg)?.backup().drill(collection.as_deref()).await?,
            Self::Remote(c) => c.post_as("/v1/admin/backups/drill", &wire::DrillBody { collection }).await?,
        })
    }
}

/// `s` as one URL path segment or query value.
fn url_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
