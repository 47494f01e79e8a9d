//! Where finished background exports are kept until they expire: in the data folder, or — when
//! recordings are in object storage, as they must be with several instances — in the same
//! bucket under `exports/`, so that any instance can hand out a file another one wrote.

use std::path::PathBuf;

use futures_util::StreamExt;

use super::Format;
use crate::recording::storage::{ByteStream, Storage, StorageError};
use crate::store::exports::Job;

#[derive(Clone)]
pub enum ExportFiles {
    /// `DATA/exports/`: written there and served from there.
    Disk(PathBuf),
    /// Written in `DATA/exports/`, then moved into object storage.
    Shared { scratch: PathBuf, storage: Storage },
}

impl ExportFiles {
    pub fn new(data: &std::path::Path, storage: &Storage) -> ExportFiles {
        let dir = data.join("exports");
        match storage {
            Storage::Disk(_) => ExportFiles::Disk(dir),
            Storage::Object { .. } => ExportFiles::Shared {
                scratch: dir,
                storage: storage.clone(),
            },
        }
    }

    fn name(job: &Job) -> String {
        let ext = Format::parse(&job.format).unwrap_or(Format::Csv).code();
        format!("job-{}.{ext}", job.id)
    }

    /// Where the worker writes the job's file.
    pub fn write_path(&self, job: &Job) -> PathBuf {
        match self {
            ExportFiles::Disk(dir) | ExportFiles::Shared { scratch: dir, .. } => dir.join(Self::name(job)),
        }
    }

    /// Keeps the written file where downloads find it.
    pub async fn keep(&self, job: &Job) -> Result<(), StorageError> {
        let ExportFiles::Shared { storage, .. } = self else {
            return Ok(());
        };
        let path = self.write_path(job);
        let file = tokio::fs::File::open(&path).await?;
        let body = tokio_util::io::ReaderStream::new(file)
            .map(|chunk| chunk.map_err(|e| StorageError::Source(e.to_string())))
            .boxed();
        storage
            .put(&format!("exports/{}", Self::name(job)), body, u64::MAX)
            .await?;
        let _ = tokio::fs::remove_file(&path).await;
        Ok(())
    }

    /// The file's content, chunk by chunk.
    pub async fn open(&self, job: &Job) -> Result<ByteStream, StorageError> {
        match self {
            ExportFiles::Disk(_) => {
                let file = tokio::fs::File::open(self.write_path(job)).await?;
                Ok(tokio_util::io::ReaderStream::new(file)
                    .map(|chunk| chunk.map_err(|e| StorageError::Source(e.to_string())))
                    .boxed())
            }
            ExportFiles::Shared { storage, .. } => storage.get(&format!("exports/{}", Self::name(job)), None).await,
        }
    }

    /// Deletes the file; one already gone is not an error.
    pub async fn delete(&self, job: &Job) -> Result<(), StorageError> {
        let gone = match self {
            ExportFiles::Disk(_) => tokio::fs::remove_file(self.write_path(job))
                .await
                .map_err(StorageError::from),
            ExportFiles::Shared { storage, .. } => storage.delete(&format!("exports/{}", Self::name(job))).await,
        };
        match gone {
            Ok(()) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
