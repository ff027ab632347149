//! TagDeliveryStream, UntagDeliveryStream and ListTagsForDeliveryStream.

use std::sync::Arc;

use super::{stored_of, ControlError, MAX_TAGS};
use super::{unreachable_conflict, ControlPlane, Expect};
use crate::config::{DeliveryStreamConfig, Issue, Tag};
use crate::plan::check_tags;
use crate::registry::DeliveryStream;

impl ControlPlane {
    /// TagDeliveryStream: adds tags or changes their values.
    pub async fn tag(&self, name: &str, tags: Vec<Tag>) -> Result<(), ControlError> {
        let _guard = self.lock.lock().await;
        let mut issues = Vec::new();
        check_tags(&tags, "", &mut issues);
        if !issues.is_empty() {
            return Err(ControlError::Invalid(strip_dots(issues)));
        }
        let stream = self.changeable(name)?;
        let mut config = (*stream.config()).clone();
        for tag in tags {
            match config.tags.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value,
                None => config.tags.push(tag),
            }
        }
        if config.tags.len() > MAX_TAGS {
            return Err(ControlError::TooManyTags {
                stream: name.to_string(),
                count: config.tags.len(),
            });
        }
        self.retag(&stream, config).await
    }

    /// UntagDeliveryStream: removes tags (keys it does not have are ignored).
    pub async fn untag(&self, name: &str, keys: &[String]) -> Result<(), ControlError> {
        let _guard = self.lock.lock().await;
        let stream = self.changeable(name)?;
        let mut config = (*stream.config()).clone();
        config.tags.retain(|t| !keys.contains(&t.key));
        self.retag(&stream, config).await
    }

    async fn retag(
        &self,
        stream: &DeliveryStream,
        config: DeliveryStreamConfig,
    ) -> Result<(), ControlError> {
        let mut definition = stream.definition();
        definition.config = Arc::new(config);
        let mut stored = stored_of(stream);
        stored.config = (*definition.config).clone();
        self.write_stored(stored, Expect::Any, |_| unreachable_conflict(), "cannot store the tags")
            .await?;
        stream.set_definition(definition);
        Ok(())
    }

    /// ListTagsForDeliveryStream: tags in the order they were added, after
    /// `exclusive_start` (a key), at most `limit`; and whether there are more.
    pub fn list_tags(
        &self,
        name: &str,
        exclusive_start: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Tag>, bool), ControlError> {
        let stream = self.registry.get(name).ok_or_else(|| self.registry.not_found(name))?;
        let tags = stream.config().tags.clone();
        let start = exclusive_start
            .and_then(|key| tags.iter().position(|t| t.key == key))
            .map_or(0, |i| i + 1);
        let rest = &tags[start.min(tags.len())..];
        let page = rest.iter().take(limit).cloned().collect();
        Ok((page, rest.len() > limit))
    }
}

fn strip_dots(issues: Vec<Issue>) -> Vec<Issue> {
    issues
        .into_iter()
        .map(|i| Issue::new(i.path.trim_start_matches('.').to_string(), i.message))
        .collect()
}
