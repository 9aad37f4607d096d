//! Weights as modules hold them: resident on the device in the compute precision (the decoder
//! keeps its LM head in f32), converted once at load; or streamed, kept in the checkpoint's
//! stored form and materialized each time the forward pass reaches them, then dropped, so only
//! one layer's worth is ever expanded. (`--weights direct` streams too; its decode steps use the
//! stored form itself: `Linear::stored`.)

use std::sync::Arc;

use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};

use crate::backend::flex_in_f32;
use crate::bands::Bands;
use crate::load::stored::StoredTensor;
use crate::load::weights::in_out;

/// Makes a streamed weight from its stored form.
type Materialize<T> = Arc<dyn Fn() -> T + Send + Sync>;

/// A weight: a device tensor, or f32 bands (`bands`).
#[derive(Clone)]
pub enum Param<T> {
    Resident(T),
    Streamed(Materialize<T>),
}

impl<T: Clone + 'static> Param<T> {
    /// The weight (in the compute precision unless `map`ped to another).
    pub fn get(&self) -> T {
        match self {
            Param::Resident(held) => held.clone(),
            Param::Streamed(materialize) => materialize(),
        }
    }

    /// A weight derived from this one (cast to f32, say), resident or streamed alike.
    pub fn map<U>(self, f: impl Fn(T) -> U + Send + Sync + 'static) -> Param<U> {
        match self {
            Param::Resident(held) => Param::Resident(f(held)),
            Param::Streamed(materialize) => Param::Streamed(Arc::new(move || f(materialize()))),
        }
    }
}

/// How a linear layer's [in, out] weight is held.
#[derive(Clone)]
pub enum Weight {
    /// A device tensor laid out [in, out] (any backend, any precision).
    Matrix(Param<Tensor<2>>),
    /// f32 on flex, in bands of output columns.
    Bands(Param<Arc<Bands>>),
}

impl Weight {
    /// An [in, out] device tensor in `dtype` as a layer holds it: in bands when that is f32 on
    /// flex (converted once when resident, at each use when streamed).
    pub fn from_matrix(param: Param<Tensor<2>>, device: &Device, dtype: FloatDType) -> Weight {
        if flex_in_f32(device, dtype) {
            Weight::Bands(param.map(|matrix| Arc::new(Bands::from_matrix(matrix))))
        } else {
            Weight::Matrix(param)
        }
    }

    /// The weight in f32 (the LM head's precision): bands already are.
    pub fn in_f32(self, device: &Device) -> Weight {
        match self {
            Weight::Matrix(param) => {
                let param = param.map(|weight| weight.cast(FloatDType::F32));
                Weight::from_matrix(param, device, FloatDType::F32)
            }
            bands => bands,
        }
    }
}

/// The token-embedding table ([vocab, hidden] in the checkpoint).
pub enum Embedding {
    /// Resident in f32 on flex: the bands of [hidden, vocab] (`bands`), which a tied LM head
    /// multiplies; a lookup reads one column of a band.
    Bands { bands: Arc<Bands>, device: Device },
    /// Resident otherwise (half precision, or a GPU), held transposed, [hidden, vocab]: the
    /// layout a tied LM head is multiplied in (`StoredTensor::to_columns`); a half-precision
    /// model widens its head to f32, a copy; a lookup gathers columns.
    Resident(Tensor<2>),
    /// Streamed: a lookup decodes only the rows it needs.
    Streamed {
        table: StoredTensor,
        device: Device,
        dtype: FloatDType,
    },
}

impl Embedding {
    /// Rows `ids` of the table, [ids.len(), hidden]. Ids must be in the vocabulary (the decoder
    /// checks them first).
    pub fn lookup(&self, ids: &[u32]) -> Tensor<2> {
        match self {
            Embedding::Bands { bands, device } => {
                let ids: Vec<usize> = ids.iter().map(|&t| t as usize).collect();
                bands.columns(&ids, device)
            }
            Embedding::Resident(columns) => {
                let ids: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
                let n = ids.len();
                let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &columns.device());
                columns.clone().select(1, ids).transpose()
            }
            Embedding::Streamed { table, device, dtype } => {
                let hidden = table.shape[1];
                let rows: Vec<usize> = ids.iter().map(|&t| t as usize).collect();
                let values = table.gather_rows_f32(&rows);
                Tensor::<2>::from_data(TensorData::new(values, [ids.len(), hidden]), device).cast(*dtype)
            }
        }
    }

    /// The stored table of a streamed embedding ([vocab, hidden] is the [out, in] matrix of a
    /// tied LM head).
    pub fn stored(&self) -> Option<StoredTensor> {
        match self {
            Embedding::Bands { .. } | Embedding::Resident(_) => None,
            Embedding::Streamed { table, .. } => Some(table.clone()),
        }
    }

    /// The table transposed, [hidden, vocab]: the LM head of a model with tied embeddings.
    pub fn transposed(&self) -> Weight {
        match self {
            Embedding::Bands { bands, .. } => Weight::Bands(Param::Resident(bands.clone())),
            Embedding::Resident(columns) => Weight::Matrix(Param::Resident(columns.clone())),
            Embedding::Streamed { table, device, dtype } if flex_in_f32(device, *dtype) => {
                let table = table.clone();
                Weight::Bands(Param::Streamed(Arc::new(move || Arc::new(Bands::from_stored(&table)))))
            }
            Embedding::Streamed { table, device, dtype } => {
                let (table, device, dtype) = (table.clone(), device.clone(), *dtype);
                let [rows, cols] = [table.shape[0], table.shape[1]];
                Weight::Matrix(Param::Streamed(Arc::new(move || {
                    in_out(&table, [cols, rows], dtype, &device)
                })))
            }
        }
    }
}
