//! A `RecordBatchReader` over a remote result: each `next()` pulls one batch
//! from the gRPC Fetch stream, so DuckDB consumes rows as the server
//! produces them (exported to C++ as an Arrow C stream).

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use futures::StreamExt;
use openduck_proto::client::RecordBatchStream;

use crate::error::ExtensionError;
use crate::runtime;

pub struct RemoteBatchReader {
    schema: SchemaRef,
    stream: Option<RecordBatchStream>,
}

impl RemoteBatchReader {
    pub fn new(schema: SchemaRef, stream: RecordBatchStream) -> Self {
        RemoteBatchReader { schema, stream: Some(stream) }
    }
}

impl Iterator for RemoteBatchReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let stream = self.stream.as_mut()?;
        let item = match runtime::block_on(stream.next()) {
            Ok(item) => item.map(|r| r.map_err(ExtensionError::from)),
            Err(e) => Some(Err(e)),
        };
        match item {
            None => {
                self.stream = None;
                None
            }
            Some(Ok(batch)) => Some(Ok(batch)),
            Some(Err(e)) => {
                // Stop after the first error; dropping the stream cancels the query.
                self.stream = None;
                Some(Err(ArrowError::ExternalError(Box::new(e))))
            }
        }
    }
}

impl RecordBatchReader for RemoteBatchReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
