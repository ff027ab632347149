//! Retention: deleting the sealed segments every registered consumer has passed.

use std::io;
use std::sync::atomic::Ordering;

use super::state::{lock, Shared};
use crate::log::embedded::checkpoint;
use crate::log::embedded::segment::SegmentInfo;

impl Shared {
    /// Deletes sealed segments whose records are all below `min_next_seq`.
    pub(super) fn retain(&self, min_next_seq: u64) {
        let victims: Vec<SegmentInfo> = {
            let mut st = lock(&self.state);
            let n = st.segments.windows(2).take_while(|w| w[1].base <= min_next_seq).count();
            st.segments.drain(..n).collect()
        };
        for seg in victims {
            match std::fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(segment = %seg.path.display(), error = %e,
                        "cannot delete a fully consumed segment");
                    continue;
                }
            }
            if let Err(e) = checkpoint::sync_dir(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "fsync of the shard directory failed");
            }
            {
                // Under the state lock, so that a stopping writer releases a consistent total.
                let st = lock(&self.state);
                self.disk_bytes.fetch_sub(seg.len, Ordering::AcqRel);
                if st.accounted {
                    self.budget.release(seg.len);
                }
            }
            tracing::debug!(segment = %seg.path.display(), bytes = seg.len, "deleted consumed segment");
        }
    }
}
