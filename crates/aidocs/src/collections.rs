//! [`CollectionsService`] (`Engine::collections`): list, describe, optimize and delete
//! collections; and the model check every reader and writer of a collection goes through
//! (a collection built by another embedding model is refused, never searched or mixed).

use crate::engine::{Engine, MODEL_PROPERTY};
use crate::error::{Error, Result};
use aidocs_core::{CollectionInfo, Filter, FilterField, FilterValue, StoreError};

impl Engine {
    /// The collections service of this engine.
    pub fn collections(&self) -> CollectionsService {
        CollectionsService { engine: self.clone() }
    }

    /// Refuse to query a collection built with another embedding model (its vectors would be
    /// garbage to this model's queries, even at equal dimensions).
    pub(crate) async fn check_model(&self, collection: &str) -> Result<()> {
        if self.model_checked.contains_key(collection) {
            return Ok(());
        }
        let info = self.store().collection_info(collection).await?;
        if let Some(found) = info.properties.get(MODEL_PROPERTY).filter(|f| *f != self.embedder().model_id()) {
            return Err(Error::ModelMismatch { collection: collection.to_owned(), expected: self.embedder().model_id().into(), found: found.clone() });
        }
        if info.dims != self.embedder().dims() {
            return Err(Error::ModelMismatch { collection: collection.to_owned(), expected: format!("{} ({} dims)", self.embedder().model_id(), self.embedder().dims()), found: format!("a model with {} dims", info.dims) });
        }
        self.model_checked.insert(collection.to_owned(), ());
        Ok(())
    }

    /// Resolve `name` to a collection, creating it for this engine's model if absent, and
    /// refuse collections built with another model.
    pub(crate) async fn ensure_collection(&self, name: &str) -> Result<String> {
        match self.store().resolve(name).await {
            Ok(c) => {
                // The same check as search: the model id and the vector size.
                self.check_model(&c).await?;
                Ok(c)
            }
            Err(StoreError::CollectionNotFound(_)) => {
                let spec = self.collection_spec(name);
                match self.store().create_collection(&spec).await {
                    Ok(()) | Err(StoreError::CollectionExists(_)) => Ok(name.to_owned()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The collections of an engine's store (`Engine::collections`).
#[derive(Clone)]
pub struct CollectionsService {
    engine: Engine,
}

impl CollectionsService {
    /// Every collection with its points, size and properties.
    pub async fn list(&self) -> Result<Vec<CollectionInfo>> {
        Ok(self.engine.store().list_collections().await?)
    }

    /// One collection, or the collection an alias points at.
    pub async fn get(&self, name: &str) -> Result<CollectionInfo> {
        Ok(self.engine.store().collection_info(name).await?)
    }

    /// Delete a collection (or what an alias points at); its model check and cached
    /// searches go with it.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let store = self.engine.store();
        let resolved = store.resolve(name).await.unwrap_or_else(|_| name.to_owned());
        store.delete_collection(name).await?;
        self.engine.model_checked.invalidate(&resolved);
        self.engine.invalidate_search(&resolved).await;
        Ok(())
    }

    /// Delete the chunks of one version of a library (`version` payload field); returns
    /// how many were deleted. Other versions are untouched.
    pub async fn delete_version(&self, name: &str, version: &str) -> Result<usize> {
        let store = self.engine.store();
        let c = store.resolve(name).await?;
        let filter = Filter::default().and(FilterField::Version, FilterValue::Keyword(version.to_owned()));
        let ids: Vec<uuid::Uuid> = store.scroll(&c, &filter).await?.into_iter().map(|p| p.id).collect();
        let n = ids.len();
        store.delete(&c, ids).await?;
        self.engine.invalidate_search(&c).await;
        Ok(n)
    }

    /// Optimize a collection's storage (merge segments, build indexes).
    pub async fn optimize(&self, name: &str) -> Result<()> {
        let store = self.engine.store();
        let c = store.resolve(name).await?;
        Ok(store.optimize(&c).await?)
    }
}
