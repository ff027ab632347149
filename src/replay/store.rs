//! Replays on disk: one JSON file per replay, `<data_dir>/replays/<id>.json`, written
//! atomically (temporary file, fsync, rename, fsync of the directory), so a replay interrupted
//! by a crash is found and resumed at the next start.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::job::ReplayJob;
use super::ReplayError;

#[derive(Debug)]
pub struct JobStore {
    dir: PathBuf,
}

impl JobStore {
    pub fn open(dir: PathBuf) -> Result<Self, ReplayError> {
        std::fs::create_dir_all(&dir).map_err(|e| ReplayError::Store(dir.clone(), e))?;
        Ok(Self { dir })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Every stored replay; files that do not parse are named in the log and skipped.
    pub fn load(&self) -> Result<Vec<ReplayJob>, ReplayError> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| ReplayError::Store(self.dir.clone(), e))?;
        let mut jobs = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&path).map(|bytes| serde_json::from_slice::<ReplayJob>(&bytes)) {
                Ok(Ok(job)) => jobs.push(job),
                Ok(Err(e)) => tracing::warn!(path = %path.display(), error = %e,
                    "a stored replay does not parse; it is left alone"),
                Err(e) => tracing::warn!(path = %path.display(), error = %e,
                    "a stored replay cannot be read; it is left alone"),
            }
        }
        jobs.sort_by_key(|j| j.started_ms);
        Ok(jobs)
    }

    pub fn save(&self, job: &ReplayJob) -> Result<(), ReplayError> {
        let path = self.path(&job.id);
        let bytes = serde_json::to_vec_pretty(job).expect("a job serialises");
        write_atomic(&self.dir, &path, &bytes).map_err(|e| ReplayError::Store(path, e))
    }
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
