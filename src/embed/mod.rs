//! Item embeddings from item text: a BERT sentence encoder (all-MiniLM-L6-v2) running on the
//! same Burn device as training, loaded from the model's own `model.safetensors` and
//! `tokenizer.json`, with mean pooling and L2 normalisation.

pub mod bert;
pub mod encoder;
pub mod item_text;
pub mod items;
pub mod weights;

pub use encoder::{check_model_dir, SentenceEncoder};
pub use items::{embed_items, ItemEmbeddings};
