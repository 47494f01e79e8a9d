//! Where finished background exports are kept until they expire: in the data folder, or — when
//! recordings are in object storage, as they must be with several instances — in the same
//! bucket under `exports/`, so that any instance can hand out a file another one wrote. Both
//! through the recordings' `Storage`, which already streams, and deletes, files of either kind.

use std::path::PathBuf;

use futures_util::StreamExt;

use super::Format;
use crate::recording::storage::{ByteStream, Storage, StorageError};
use crate::store::exports::Job;

#[derive(Clone)]
pub struct ExportFiles {
    /// `DATA/exports/`: where the worker writes a file.
    scratch: PathBuf,
    /// Where it is kept: the scratch folder itself, or the object storage.
    kept: Storage,
}

impl ExportFiles {
    pub fn new(data: &std::path::Path, storage: &Storage) -> ExportFiles {
        let scratch = data.join("exports");
        let kept = match storage {
            Storage::Disk(_) => Storage::Disk(scratch.clone()),
            Storage::Object { .. } => storage.clone(),
        };
        ExportFiles { scratch, kept }
    }

    fn name(job: &Job) -> String {
        let ext = Format::parse(&job.format).unwrap_or(Format::Csv).code();
        format!("job-{}.{ext}", job.id)
    }

    /// The file's key in `kept`.
    fn key(&self, job: &Job) -> String {
        match self.kept {
            Storage::Disk(_) => Self::name(job),
            Storage::Object { .. } => format!("exports/{}", Self::name(job)),
        }
    }

    /// Where the worker writes the job's file.
    pub fn write_path(&self, job: &Job) -> PathBuf {
        self.scratch.join(Self::name(job))
    }

    /// Keeps the written file where downloads find it (moved into object storage).
    pub async fn keep(&self, job: &Job) -> Result<(), StorageError> {
        if let Storage::Disk(_) = self.kept {
            return Ok(());
        }
        let path = self.write_path(job);
        let file = tokio::fs::File::open(&path).await?;
        let body = tokio_util::io::ReaderStream::new(file)
            .map(|chunk| chunk.map_err(|e| StorageError::Source(e.to_string())))
            .boxed();
        self.kept.put(&self.key(job), body, u64::MAX).await?;
        let _ = tokio::fs::remove_file(&path).await;
        Ok(())
    }

    /// The file's content, chunk by chunk.
    pub async fn open(&self, job: &Job) -> Result<ByteStream, StorageError> {
        self.kept.get(&self.key(job), None).await
    }

    /// Deletes the file; one already gone is not an error.
    pub async fn delete(&self, job: &Job) -> Result<(), StorageError> {
        self.kept.delete(&self.key(job)).await
    }
}
