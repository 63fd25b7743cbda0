//! Arrow IPC framing shared by the server and the Rust client: a result is one
//! IPC stream (schema, batches, end marker) cut into chunks.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

/// Arrow IPC data that does not encode or decode.
#[derive(Debug, thiserror::Error)]
#[error("bad Arrow IPC data: {0}")]
pub struct IpcError(#[from] pub arrow::error::ArrowError);

pub type IpcResult<T> = Result<T, IpcError>;

fn ipc_err(e: arrow::error::ArrowError) -> IpcError {
    IpcError(e)
}

/// An IPC stream holding only `schema`.
pub fn schema_bytes(schema: &Schema) -> IpcResult<Vec<u8>> {
    let mut w = StreamWriter::try_new(Vec::new(), schema).map_err(ipc_err)?;
    w.finish().map_err(ipc_err)?;
    w.into_inner().map_err(ipc_err)
}

pub fn schema_from_bytes(bytes: &[u8]) -> IpcResult<SchemaRef> {
    Ok(StreamReader::try_new(bytes, None).map_err(ipc_err)?.schema())
}

/// Encodes batches into IPC stream chunks: the first chunk starts with the
/// schema, the last one ends with the end-of-stream marker.
pub struct ChunkEncoder {
    writer: StreamWriter<Vec<u8>>,
}

impl ChunkEncoder {
    pub fn new(schema: &Schema) -> IpcResult<Self> {
        Ok(ChunkEncoder { writer: StreamWriter::try_new(Vec::new(), schema).map_err(ipc_err)? })
    }

    /// The bytes encoded since the last take (right after `new`: the schema).
    /// The next buffer starts with room for as many bytes (batches are
    /// alike): no regrowing and copying.
    pub fn take(&mut self) -> Vec<u8> {
        let room = self.writer.get_ref().len();
        std::mem::replace(self.writer.get_mut(), Vec::with_capacity(room))
    }

    pub fn batch(&mut self, batch: &RecordBatch) -> IpcResult<Vec<u8>> {
        self.append(batch)?;
        Ok(self.take())
    }

    /// Encode a batch behind the bytes not yet taken (see `buffered`).
    pub fn append(&mut self, batch: &RecordBatch) -> IpcResult<()> {
        self.writer.write(batch).map_err(ipc_err)
    }

    /// Bytes encoded and not yet taken.
    pub fn buffered(&self) -> usize {
        self.writer.get_ref().len()
    }

    pub fn finish(mut self) -> IpcResult<Vec<u8>> {
        self.writer.finish().map_err(ipc_err)?;
        Ok(self.take())
    }
}

/// Encode batches as one complete IPC stream.
pub fn encode_all(schema: &SchemaRef, batches: &[RecordBatch]) -> IpcResult<Vec<u8>> {
    let mut enc = ChunkEncoder::new(schema)?;
    let mut out = enc.take();
    for b in batches {
        out.extend(enc.batch(b)?);
    }
    out.extend(enc.finish()?);
    Ok(out)
}

/// Decode one complete IPC stream.
pub fn decode_all(bytes: &[u8]) -> IpcResult<(SchemaRef, Vec<RecordBatch>)> {
    let reader = StreamReader::try_new(bytes, None).map_err(ipc_err)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(ipc_err)?;
    Ok((schema, batches))
}

pub fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    #[test]
    fn chunks_concatenate_to_one_stream() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(StringArray::from(vec![Some("x"), None]))],
        )
        .unwrap();
        let mut enc = ChunkEncoder::new(&schema).unwrap();
        let mut all = enc.take();
        all.extend(enc.batch(&b).unwrap());
        all.extend(enc.batch(&b).unwrap());
        all.extend(enc.finish().unwrap());
        let (s, batches) = decode_all(&all).unwrap();
        assert_eq!(s, schema);
        assert_eq!(batches, vec![b.clone(), b]);
        assert_eq!(schema_from_bytes(&schema_bytes(&schema).unwrap()).unwrap(), schema);
        assert!(decode_all(b"garbage").is_err());
    }
}
